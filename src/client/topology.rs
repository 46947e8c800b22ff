//! The client's topology cache and the order in which a request tries
//! nodes, both pure. [`Topology`] is the account as the client last learned
//! it: the write region, the epoch, and the regions in failover priority
//! order with their nodes' endpoints. [`candidates`] turns it, the caller's
//! preferences and what the current operation has learned into the
//! endpoints to try, best first. `router` fetches the topology and carries
//! the choices out.
//!
//! Invariant: a topology never replaces one of a newer epoch, so a node cut
//! off from the meta group cannot send the client back to a former write
//! region.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::client::endpoints::with_scheme;
use crate::client::errors::ClientError;
use crate::wire::pb::v1 as pb;

/// The account as the client last learned it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub epoch: u64,
    /// `None` until the meta group has formed the account.
    pub write_region: Option<String>,
    /// In failover priority order, first choice first.
    pub regions: Vec<RegionNodes>,
}

/// One region and where its nodes take client requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionNodes {
    pub name: String,
    /// `http://host:port` of each node, in the account's order.
    pub endpoints: Vec<String>,
}

impl Topology {
    /// From `Admin.Account`, which lists the regions in priority order.
    pub fn from_account(account: &pb::AccountResponse) -> Topology {
        let mut regions: Vec<&pb::AccountRegion> = account.regions.iter().collect();
        // Already in order; sorting keeps the rule true of any server.
        regions.sort_by_key(|r| r.priority);
        Topology {
            epoch: account.epoch,
            write_region: Some(account.write_region.clone()).filter(|w| !w.is_empty()),
            regions: regions
                .into_iter()
                .map(|r| RegionNodes {
                    name: r.name.clone(),
                    endpoints: r
                        .nodes
                        .iter()
                        .filter(|n| !n.client_addr.is_empty())
                        .map(|n| with_scheme(&n.client_addr))
                        .collect(),
                })
                .collect(),
        }
    }

    /// Whether `fetched` may replace this topology: a newer epoch always,
    /// the same epoch too (priorities change within one) unless it would
    /// forget the write region, an older epoch never.
    pub fn accepts(&self, fetched: &Topology) -> bool {
        match fetched.epoch.cmp(&self.epoch) {
            Ordering::Greater => true,
            Ordering::Equal => fetched.write_region.is_some() || self.write_region.is_none(),
            Ordering::Less => false,
        }
    }

    /// Whether a NOT_WRITE_REGION that named a write region as of `epoch`
    /// may send writes there: only when this topology knows no newer
    /// epoch. A node that lags behind a failover names the former write
    /// region; following it would write into a region that may be cut off.
    /// A redirect without an epoch is not followed: the refresh it causes
    /// finds the write region instead.
    pub fn follows_redirect(&self, epoch: Option<u64>) -> bool {
        epoch.is_some_and(|e| e >= self.epoch)
    }

    pub fn region_of(&self, endpoint: &str) -> Option<&str> {
        self.regions
            .iter()
            .find(|r| r.endpoints.iter().any(|e| e == endpoint))
            .map(|r| r.name.as_str())
    }

    pub fn endpoints(&self, region: &str) -> &[String] {
        self.regions
            .iter()
            .find(|r| r.name == region)
            .map_or(&[], |r| r.endpoints.as_slice())
    }

    /// Every preferred region must be a region of the account.
    pub fn check_preferred(&self, preferred: &[String]) -> Result<(), ClientError> {
        let known = |name: &String| self.regions.iter().any(|r| &r.name == name);
        match preferred.iter().find(|r| !known(r)) {
            None => Ok(()),
            Some(unknown) => {
                let mut names: Vec<String> = self.regions.iter().map(|r| r.name.clone()).collect();
                names.sort();
                Err(ClientError::UnknownRegion {
                    region: unknown.clone(),
                    known: names,
                })
            }
        }
    }
}

/// Where a request may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Reads, admin requests, and writes the caller pinned with
    /// `no_forward`: the preferred regions, then the home region, then the
    /// others in failover priority order.
    Reads,
    /// Writes: the write region's nodes.
    WriteRegion,
}

/// What the caller asked for and where it came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Regions reads try first, first choice first.
    pub preferred: Vec<String>,
    /// The endpoints the client was given. Each comes first within its
    /// region, and the region of the first one that is a node of the
    /// account is the home region, tried right after the preferred ones: a
    /// client pointed at a node is presumably near it.
    pub seeds: Vec<String>,
}

/// What one operation has learned from its failed attempts. A new round
/// (after a backoff and a refresh) starts from a clean slate, except that a
/// session read keeps asking the write region first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Endpoints that failed in this round.
    pub tried: Vec<String>,
    /// Regions that could not serve a read in this round.
    pub refused_regions: Vec<String>,
    /// The write region a NOT_WRITE_REGION named, which wins over the
    /// topology's until the next refresh.
    pub named_write_region: Option<String>,
    /// A session read was not available where it went: DESIGN.md sends it
    /// to the write region next.
    pub write_region_first: bool,
}

impl Attempts {
    pub fn new_round(&mut self) {
        self.tried.clear();
        self.refused_regions.clear();
        self.named_write_region = None;
    }
}

/// The endpoints `route` may try now, best first. `sticky` maps a region
/// to the endpoint that last answered there (kept first, so one connection
/// is reused); regions in `avoided` refused reads recently and go last.
pub fn candidates(
    topology: &Topology,
    route: Route,
    prefs: &Preferences,
    sticky: &HashMap<String, String>,
    avoided: &[String],
    attempts: &Attempts,
) -> Vec<String> {
    let regions: Vec<&str> = match route {
        Route::WriteRegion => attempts
            .named_write_region
            .as_deref()
            .or(topology.write_region.as_deref())
            .into_iter()
            .collect(),
        Route::Reads => read_regions(topology, prefs, avoided, attempts),
    };
    let mut out: Vec<String> = Vec::new();
    let mut add = |endpoint: &String| {
        if !attempts.tried.contains(endpoint) && !out.contains(endpoint) {
            out.push(endpoint.clone());
        }
    };
    for region in regions {
        region_endpoints(topology, region, prefs, sticky)
            .into_iter()
            .for_each(&mut add);
    }
    // The endpoints given are a last resort for reads: the account's own
    // addresses may not be reachable from here (behind a load balancer).
    if route == Route::Reads {
        prefs.seeds.iter().for_each(&mut add);
    }
    out
}

/// The first candidate not marked down, else the first: a node marked down
/// may be back, and trying it beats giving up.
pub fn choose(candidates: &[String], is_down: impl Fn(&str) -> bool) -> Option<&String> {
    candidates
        .iter()
        .find(|e| !is_down(e))
        .or_else(|| candidates.first())
}

/// Where a refresh asks for the account: one node of every region (the
/// one that last answered, else the first not marked down), plus the
/// endpoints given that are no node of the account.
pub fn refresh_targets(
    topology: &Topology,
    prefs: &Preferences,
    sticky: &HashMap<String, String>,
    is_down: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut targets: Vec<String> = Vec::new();
    for region in &topology.regions {
        let order: Vec<String> = region_endpoints(topology, &region.name, prefs, sticky)
            .into_iter()
            .cloned()
            .collect();
        if let Some(endpoint) = choose(&order, &is_down) {
            targets.push(endpoint.clone());
        }
    }
    let outside = prefs
        .seeds
        .iter()
        .filter(|s| topology.region_of(s).is_none());
    targets.extend(outside.cloned());
    targets
}

fn read_regions<'a>(
    topology: &'a Topology,
    prefs: &'a Preferences,
    avoided: &[String],
    attempts: &Attempts,
) -> Vec<&'a str> {
    let home = prefs.seeds.iter().find_map(|s| topology.region_of(s));
    let write_first = topology
        .write_region
        .as_deref()
        .filter(|_| attempts.write_region_first);
    let known = |name: &&str| topology.regions.iter().any(|r| r.name == *name);
    let mut order: Vec<&str> = Vec::new();
    let listed = write_first
        .into_iter()
        .chain(prefs.preferred.iter().map(String::as_str))
        .chain(home)
        .chain(topology.regions.iter().map(|r| r.name.as_str()));
    for name in listed.filter(known) {
        if !order.contains(&name) && !attempts.refused_regions.iter().any(|r| r == name) {
            order.push(name);
        }
    }
    let is_avoided = |name: &&str| avoided.iter().any(|a| a == name);
    let (fresh, stale): (Vec<&str>, Vec<&str>) = order.into_iter().partition(|n| !is_avoided(n));
    fresh.into_iter().chain(stale).collect()
}

/// A region's endpoints: the one that last answered, then the seeds, then
/// the others in the account's order.
fn region_endpoints<'a>(
    topology: &'a Topology,
    region: &str,
    prefs: &'a Preferences,
    sticky: &'a HashMap<String, String>,
) -> Vec<&'a String> {
    let endpoints = topology.endpoints(region);
    let in_region = |e: &&String| endpoints.contains(e);
    sticky
        .get(region)
        .filter(in_region)
        .into_iter()
        .chain(prefs.seeds.iter().filter(in_region))
        .chain(endpoints.iter())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(host: &str) -> String {
        format!("http://{host}:7070")
    }

    fn region(name: &str, hosts: &[&str]) -> RegionNodes {
        RegionNodes {
            name: name.to_string(),
            endpoints: hosts.iter().map(|h| e(h)).collect(),
        }
    }

    /// west (write region) w1 w2, east e1 e2, north n1 n2, in that
    /// priority order, at epoch 3.
    fn topology() -> Topology {
        Topology {
            epoch: 3,
            write_region: Some("west".to_string()),
            regions: vec![
                region("west", &["w1", "w2"]),
                region("east", &["e1", "e2"]),
                region("north", &["n1", "n2"]),
            ],
        }
    }

    fn prefs(preferred: &[&str], seeds: &[&str]) -> Preferences {
        Preferences {
            preferred: preferred.iter().map(|r| r.to_string()).collect(),
            seeds: seeds.iter().map(|h| e(h)).collect(),
        }
    }

    fn hosts(endpoints: &[String]) -> Vec<&str> {
        endpoints
            .iter()
            .map(|x| &x["http://".len()..x.len() - ":7070".len()])
            .collect()
    }

    fn reads(p: &Preferences, attempts: &Attempts) -> Vec<String> {
        candidates(&topology(), Route::Reads, p, &HashMap::new(), &[], attempts)
    }

    #[test]
    fn the_account_response_becomes_a_topology_in_priority_order() {
        let node = |id, addr: &str| pb::AccountNode {
            node_id: id,
            client_addr: addr.to_string(),
            meta_voter: false,
        };
        let account = pb::AccountResponse {
            write_region: "east".to_string(),
            epoch: 2,
            regions: vec![
                pb::AccountRegion {
                    name: "west".to_string(),
                    priority: 2,
                    nodes: vec![node(1, "w1:7070"), node(2, "")],
                },
                pb::AccountRegion {
                    name: "east".to_string(),
                    priority: 1,
                    nodes: vec![node(5, "http://e1:7070")],
                },
            ],
            ..Default::default()
        };
        let t = Topology::from_account(&account);
        assert_eq!(t.epoch, 2);
        assert_eq!(t.write_region.as_deref(), Some("east"));
        assert_eq!(
            t.regions,
            vec![region("east", &["e1"]), region("west", &["w1"])]
        );
        assert_eq!(t.region_of(&e("w1")), Some("west"));
        assert_eq!(t.region_of(&e("x")), None);
        let unformed = Topology::from_account(&pb::AccountResponse::default());
        assert_eq!(unformed.write_region, None);
    }

    #[test]
    fn a_topology_never_goes_back_to_an_older_epoch() {
        let current = topology();
        let mut fetched = topology();
        assert!(current.accepts(&fetched), "same epoch: new priorities");
        fetched.epoch = 2;
        assert!(
            !current.accepts(&fetched),
            "a node cut off from the meta group"
        );
        fetched.epoch = 4;
        fetched.write_region = Some("east".to_string());
        assert!(current.accepts(&fetched), "a failover");
        let mut unformed = topology();
        unformed.write_region = None;
        assert!(!current.accepts(&unformed));
        assert!(Topology::default().accepts(&topology()));
    }

    #[test]
    fn a_redirect_is_followed_only_from_an_epoch_not_older_than_ours() {
        let known = topology();
        assert!(
            !known.follows_redirect(Some(2)),
            "a node that lags a failover"
        );
        assert!(known.follows_redirect(Some(3)), "the epoch we know");
        assert!(known.follows_redirect(Some(4)), "a failover we missed");
        assert!(!known.follows_redirect(None), "no epoch: refresh instead");
        assert!(Topology::default().follows_redirect(Some(1)));
    }

    #[test]
    fn an_unknown_preferred_region_names_the_known_ones() {
        let err = topology()
            .check_preferred(&["east".to_string(), "south".to_string()])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "region \"south\" is not in the account; its regions are: east, north, west"
        );
        assert!(topology().check_preferred(&["north".to_string()]).is_ok());
    }

    #[test]
    fn reads_try_the_preferred_regions_then_home_then_priority_order() {
        let none = Attempts::default();
        // Through an east seed with no preference: east (seed first), then
        // the others by priority.
        assert_eq!(
            hosts(&reads(&prefs(&[], &["e2"]), &none)),
            ["e2", "e1", "w1", "w2", "n1", "n2"]
        );
        // A preference comes before home.
        assert_eq!(
            hosts(&reads(&prefs(&["north"], &["e2"]), &none)),
            ["n1", "n2", "e2", "e1", "w1", "w2"]
        );
        // A seed that is no node of the account (a load balancer) is tried
        // last, and gives no home region.
        assert_eq!(
            hosts(&reads(&prefs(&[], &["lb"]), &none)),
            ["w1", "w2", "e1", "e2", "n1", "n2", "lb"]
        );
    }

    #[test]
    fn failed_attempts_move_a_read_on_to_other_nodes_and_regions() {
        let p = prefs(&["east", "north"], &[]);
        let mut attempts = Attempts {
            tried: vec![e("e1")],
            ..Attempts::default()
        };
        assert_eq!(hosts(&reads(&p, &attempts))[..2], ["e2", "n1"]);
        attempts.refused_regions.push("east".to_string());
        assert_eq!(hosts(&reads(&p, &attempts))[0], "n1");
        // A session read not available goes to the write region next.
        attempts.write_region_first = true;
        assert_eq!(hosts(&reads(&p, &attempts))[..2], ["w1", "w2"]);
        attempts.new_round();
        assert!(attempts.write_region_first, "kept for the whole operation");
        assert_eq!(hosts(&reads(&p, &attempts))[..3], ["w1", "w2", "e1"]);
    }

    #[test]
    fn a_region_that_refused_recently_goes_last_and_the_last_good_node_first() {
        let sticky = HashMap::from([("east".to_string(), e("e2"))]);
        let avoided = vec!["east".to_string()];
        let order = candidates(
            &topology(),
            Route::Reads,
            &prefs(&["east"], &[]),
            &sticky,
            &avoided,
            &Attempts::default(),
        );
        assert_eq!(hosts(&order), ["w1", "w2", "n1", "n2", "e2", "e1"]);
    }

    #[test]
    fn writes_go_to_the_write_region_or_the_one_a_refusal_named() {
        let write = |p: &Preferences, attempts: &Attempts| {
            candidates(
                &topology(),
                Route::WriteRegion,
                p,
                &HashMap::new(),
                &[],
                attempts,
            )
        };
        let mut attempts = Attempts::default();
        // The preference and an east seed do not matter; a west seed comes
        // first within west.
        assert_eq!(
            hosts(&write(&prefs(&["east"], &["e1"]), &attempts)),
            ["w1", "w2"]
        );
        assert_eq!(hosts(&write(&prefs(&[], &["w2"]), &attempts)), ["w2", "w1"]);
        attempts.named_write_region = Some("north".to_string());
        assert_eq!(hosts(&write(&prefs(&[], &[]), &attempts)), ["n1", "n2"]);
        attempts.named_write_region = Some("mars".to_string());
        assert!(write(&prefs(&[], &[]), &attempts).is_empty());
        let unformed = Topology {
            write_region: None,
            ..topology()
        };
        let none = candidates(
            &unformed,
            Route::WriteRegion,
            &prefs(&[], &[]),
            &HashMap::new(),
            &[],
            &Attempts::default(),
        );
        assert!(none.is_empty());
    }

    #[test]
    fn a_refresh_asks_one_node_per_region_and_the_outside_endpoints() {
        let sticky = HashMap::from([("north".to_string(), e("n2"))]);
        let w1 = e("w1");
        let targets = refresh_targets(&topology(), &prefs(&[], &["e2", "lb"]), &sticky, |x| {
            x == w1
        });
        assert_eq!(hosts(&targets), ["w2", "e2", "n2", "lb"]);
        // Before the first answer only the endpoints given are known.
        let first = refresh_targets(
            &Topology::default(),
            &prefs(&[], &["e2"]),
            &HashMap::new(),
            |_| false,
        );
        assert_eq!(hosts(&first), ["e2"]);
    }

    #[test]
    fn choose_skips_nodes_marked_down_unless_all_are() {
        let all = vec![e("a"), e("b")];
        let a = e("a");
        assert_eq!(choose(&all, |x| x == a), Some(&e("b")));
        assert_eq!(choose(&all, |_| true), Some(&e("a")));
        assert_eq!(choose(&[], |_| false), None);
    }
}
