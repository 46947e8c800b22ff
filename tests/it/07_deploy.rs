//! The files under `deploy/` are documentation an operator copies, so they
//! are tested like code: the annotated example must parse, validate and
//! state the real defaults, and the compose nodes must form one account.

use std::path::{Path, PathBuf};

use meridian::config::{
    AccountConfig, Config, FailoverConfig, LeaseConfig, RaftConfig, ReadConfig, TransportConfig,
};
use meridian::ids::{NodeId, RegionId};
use meridian::storage::config::StorageConfig;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn load(path: &Path) -> Config {
    Config::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_annotated_example_validates_and_states_the_real_defaults() {
    let config = load(&deploy_dir().join("node.example.toml"));

    // Every optional section is written out in full, so comparing it with
    // the code's defaults stops the documentation from drifting.
    assert_eq!(config.raft, RaftConfig::default());
    assert_eq!(config.storage, StorageConfig::default());
    assert_eq!(config.transport, TransportConfig::default());
    assert_eq!(config.reads, ReadConfig::default());
    assert_eq!(config.account.leases, LeaseConfig::default());
    assert_eq!(config.account.failover, FailoverConfig::default());

    // The default consistency is private to config.rs: learn it from an
    // account section that leaves it out.
    let bare: AccountConfig =
        toml::from_str("name = \"x\"\nregions = []").expect("a bare account section parses");
    assert_eq!(config.account.default_consistency, bare.default_consistency);

    // Equality alone would pass if a key were left out (serde fills in the
    // default), so also check that every key is written out.
    let text = std::fs::read_to_string(deploy_dir().join("node.example.toml")).expect("readable");
    let table: toml::Table = toml::from_str(&text).expect("the example is TOML");
    assert_same_keys(&table, "raft", &RaftConfig::default());
    assert_same_keys(&table, "storage", &StorageConfig::default());
    assert_same_keys(&table, "transport", &TransportConfig::default());
    assert_same_keys(&table, "reads", &ReadConfig::default());
    let account = table
        .get("account")
        .and_then(toml::Value::as_table)
        .expect("the example has an [account] table");
    assert_same_keys(account, "leases", &LeaseConfig::default());
    assert_same_keys(account, "failover", &FailoverConfig::default());

    let region = config.region().expect("node 1 is in a region");
    assert_eq!(region.name, RegionId::new("west"));
    assert_eq!(region.nodes.len(), 4);
}

fn assert_same_keys<T: serde::Serialize>(example: &toml::Table, section: &str, defaults: &T) {
    let written: Vec<&String> = example
        .get(section)
        .and_then(toml::Value::as_table)
        .unwrap_or_else(|| panic!("the example has no [{section}] table"))
        .keys()
        .collect();
    let expected = toml::Table::try_from(defaults).expect("defaults serialize to TOML");
    let expected: Vec<&String> = expected.keys().collect();
    assert_eq!(written, expected, "keys of [{section}] in the example");
}

#[test]
fn every_compose_node_validates_and_shares_one_account() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("compose"))
        .expect("deploy/compose exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 4, "one file per node of west: {paths:?}");

    let configs: Vec<Config> = paths.iter().map(|path| load(path)).collect();
    for (path, config) in paths.iter().zip(&configs) {
        assert_eq!(
            config.account,
            configs[0].account,
            "{} has a different [account] section",
            path.display()
        );
    }

    // Each file is a different node of the region, n1..n4 in order.
    let ids: Vec<NodeId> = configs.iter().map(|c| c.node.id).collect();
    assert_eq!(ids, vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
}
