//! Glob patterns for target names, resource ids and ARNs.

use serde::Deserialize;

/// A glob: `*` matches any run of characters (including `/` and `:`), `?` exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(glob: impl Into<String>) -> Self {
        Pattern(glob.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Iterative wildcard matching with single backtracking point: linear in practice and
    /// never recursive, so hostile input cannot blow the stack.
    pub fn matches(&self, text: &str) -> bool {
        let pattern: Vec<char> = self.0.chars().collect();
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && pattern[p] == '*' {
                star = Some((p, t));
                p += 1;
            } else if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
                p += 1;
                t += 1;
            } else if let Some((star_p, star_t)) = star {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn globs() {
        assert!(Pattern::new("*").matches(""));
        assert!(Pattern::new("a*c").matches("abbbc"));
        assert!(Pattern::new("a?c").matches("abc"));
        assert!(!Pattern::new("a?c").matches("ac"));
        assert!(
            Pattern::new("arn:aws:ec2:*:1111:instance/*").matches("arn:aws:ec2:eu-west-1:1111:instance/i-1")
        );
        assert!(!Pattern::new("payments-*").matches("x-payments-api"));
    }

    proptest! {
        #[test]
        fn literal_matches_itself(s in "[a-z0-9/:.-]{0,40}") {
            prop_assert!(Pattern::new(s.clone()).matches(&s));
        }

        #[test]
        fn star_prefix_matches_any_suffix(prefix in "[a-z]{0,10}", rest in ".{0,20}") {
            let pattern = format!("{prefix}*");
            let text = format!("{prefix}{rest}");
            prop_assert!(Pattern::new(pattern).matches(&text));
        }
    }
}
