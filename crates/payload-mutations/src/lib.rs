//! Property-test generators that damage realistic JSON payloads: drop fields, change types,
//! truncate, nest, add huge strings and odd unicode. Every parser of external input is fuzzed
//! with them (see docs/reliability.md).

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// One change to one place of a document.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// The field or element is removed (the root becomes `null`).
    Drop,
    /// Any other JSON: the type changes.
    Replace(Value),
    /// A string cut short, an array or object with its tail removed.
    Truncate(Index),
    /// A string of this many characters.
    Huge(usize),
    /// Control characters, right-to-left marks, emoji, combining marks.
    Unicode(String),
    /// The value wrapped this many arrays deep.
    Nest(usize),
    /// A number out of the range any field expects.
    Number(Value),
    /// `""`, `[]` or `{}` of the same type.
    Empty,
}

fn odd_unicode() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\u{0}".to_owned()),
        Just("\u{202e}evil\u{202c}".to_owned()),
        Just("🦀🦀🦀".to_owned()),
        Just("e\u{301}\u{301}\u{301}".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("\u{10ffff}".to_owned()),
        ".{1,16}",
    ]
}

fn odd_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(0.5)),
        Just(json!(4_294_967_296_u64)),
        Just(json!(1e11)),
        Just(json!(253_402_300_800_i64)),
        any::<i64>().prop_map(Value::from),
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::Drop),
        3 => any_json().prop_map(Mutation::Replace),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (1_000_usize..100_000).prop_map(Mutation::Huge),
        2 => odd_unicode().prop_map(Mutation::Unicode),
        1 => (1_usize..100).prop_map(Mutation::Nest),
        2 => odd_number().prop_map(Mutation::Number),
        1 => Just(Mutation::Empty),
    ]
}

/// Up to `max` mutations, each at a place chosen among all places of the document.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<(Index, Mutation)>> {
    prop::collection::vec((any::<Index>(), mutation()), 1..=max)
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn places(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(Step::Key(key.clone()));
                places(child, path, out);
                path.pop();
            }
        }
        Value::Array(list) => {
            for (index, child) in list.iter().enumerate() {
                path.push(Step::At(index));
                places(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |value, step| match step {
        Step::Key(key) => value.get_mut(key.as_str()),
        Step::At(index) => value.get_mut(*index),
    })
}

/// Applies the mutations in order to `document`.
pub fn apply(mut document: Value, mutations: &[(Index, Mutation)]) -> Value {
    for (place, mutation) in mutations {
        let mut all = Vec::new();
        places(&document, &mut Vec::new(), &mut all);
        let path = &all[place.index(all.len())];
        change(&mut document, path, mutation);
    }
    document
}

fn change(document: &mut Value, path: &[Step], mutation: &Mutation) {
    if let Mutation::Drop = mutation {
        match path.split_last() {
            None => *document = Value::Null,
            Some((last, parent)) => match (at(document, parent), last) {
                (Some(Value::Object(map)), Step::Key(key)) => {
                    map.remove(key);
                }
                (Some(Value::Array(list)), Step::At(index)) if *index < list.len() => {
                    list.remove(*index);
                }
                _ => {}
            },
        }
        return;
    }
    let Some(target) = at(document, path) else { return };
    *target = match mutation {
        Mutation::Drop => unreachable!("handled above"),
        Mutation::Replace(value) => value.clone(),
        Mutation::Truncate(cut) => match target.take() {
            Value::String(text) => {
                let chars: Vec<char> = text.chars().collect();
                Value::String(chars[..cut.index(chars.len() + 1)].iter().collect())
            }
            Value::Array(mut list) => {
                list.truncate(cut.index(list.len() + 1));
                Value::Array(list)
            }
            Value::Object(map) => {
                let keep = cut.index(map.len() + 1);
                Value::Object(map.into_iter().take(keep).collect())
            }
            other => other,
        },
        Mutation::Huge(length) => {
            let seed = target.as_str().unwrap_or("x").to_owned();
            Value::String(seed.chars().chain(std::iter::repeat('é')).take(*length).collect())
        }
        Mutation::Unicode(text) => match target.take() {
            Value::String(s) => Value::String(format!("{s}{text}")),
            _ => Value::String(text.clone()),
        },
        Mutation::Nest(depth) => {
            let mut value = target.take();
            for _ in 0..*depth {
                value = Value::Array(vec![value]);
            }
            value
        }
        Mutation::Number(number) => number.clone(),
        Mutation::Empty => match target {
            Value::Array(_) => json!([]),
            Value::Object(_) => json!({}),
            _ => json!(""),
        },
    };
}

/// Bytes as they may arrive: cut anywhere, with some bytes overwritten.
pub fn damaged_bytes(document: &Value) -> impl Strategy<Value = Vec<u8>> + use<> {
    let bytes = serde_json::to_vec(document).expect("JSON serialises");
    (any::<Index>(), prop::collection::vec((any::<Index>(), any::<u8>()), 0..4)).prop_map(
        move |(cut, flips)| {
            let mut bytes = bytes.clone();
            for (place, byte) in flips {
                let index = place.index(bytes.len());
                bytes[index] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes
        },
    )
}
