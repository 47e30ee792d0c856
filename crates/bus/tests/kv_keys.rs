//! Key-value keys from outside data against a real nats-server: a 6,000-character key is
//! stored and read back, and the connection stays up for the next key.

use bus::JsonKv;
use local_nats::NatsServer;

#[tokio::test]
async fn a_6000_character_key_is_stored_and_the_connection_stays_up() {
    let server = NatsServer::start().expect("a nats-server >= 2.10 (run scripts/install-nats-server)");
    let client =
        bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "bus-kv-tests")).await.unwrap();
    let js = bus::jetstream(client);
    let store = js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "hostile".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let kv: JsonKv<String> = JsonKv::new(store, "hostile");
    let huge = format!("snyk.cursor.{}", "9".repeat(6_000));
    let other = format!("snyk.cursor.{}8", "9".repeat(5_999));
    kv.put(&huge, &"first".to_owned()).await.expect("a long key is stored");
    kv.put(&other, &"second".to_owned()).await.expect("and another");
    assert_eq!(kv.get(&huge).await.unwrap().map(|v| v.value).as_deref(), Some("first"));
    assert_eq!(kv.get(&other).await.unwrap().map(|v| v.value).as_deref(), Some("second"));
    let revision = kv.get(&huge).await.unwrap().unwrap().revision;
    kv.update(&huge, &"third".to_owned(), revision).await.expect("compare-and-set on it");
    kv.create("odd key with spaces", &"x".to_owned()).await.expect("an invalid key is encoded");
    kv.put("health-api.account", &"plain".to_owned()).await.expect("the connection is still up");
    let mut keys = kv.keys().await.unwrap();
    keys.sort();
    assert!(keys.contains(&"health-api.account".to_owned()), "{keys:?}");
    assert!(keys.iter().all(|k| k.len() <= bus::safe::MAX_KV_KEY), "{keys:?}");
}
