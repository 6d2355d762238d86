//! lanesd: a Lightning node on LDK, BDK and bitcoind, driven through gRPC.
//!
//! Start reading at [`builder`]: it wires every component in order (config → stores → chain source →
//! wallet → channel manager → router → watcher → services → API) and is the one place that knows them
//! all. [`Node`] is a facade over the services (`node.payments()`, `node.channels()`, …); each service
//! holds only the handles it needs and never the node. The gRPC API ([`api`]) parses, calls one service
//! method and converts.
//!
//! Layers (a module only uses modules of its own layer or below; no import circle):
//! 1. `config`, `error`, `ids`, `record`, `store`, `bus`, `health`, `bolt12`: values, records, the event bus.
//! 2. Services: `onchain`, `peers`, `splice`, `channels`, `invoice`, `payments`, `offers`, `routes`, `graph`,
//!    `forwards`, `announce`, `sweep`, `anchors`, `listener`, `watcher`, `funding_watch` (services may use one another, never
//!    in a circle: `channels` shows `splice`'s splices, `offers` counts `payments`' receipts; the test below
//!    checks every module's `crate::` uses).
//! 3. `events`: LDK's events, handed to the services.
//! 4. `node` (the facade and its tasks), `builder` (the wiring), `api` (the transport).
//!
//! Owns: the crate's module list and what it exports. Must never: hold logic of its own.

pub mod anchors;
pub mod announce;
pub mod api;
pub mod bolt12;
pub mod builder;
pub mod bus;
pub mod channels;
pub mod config;
pub mod error;
pub mod events;
pub mod forwards;
pub mod funding_watch;
pub mod graph;
pub mod header_cache;
pub mod health;
pub mod ids;
pub mod invoice;
pub mod lease;
pub mod listener;
pub mod node;
pub mod offers;
pub mod onchain;
pub mod payments;
pub mod processor;
pub mod peers;
pub mod record;
pub mod routes;
pub mod store;
pub mod splice;
pub mod sweep;
pub mod watcher;

pub use builder::Builder;
pub use config::Config;
pub use error::NodeError;
pub use node::Node;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// The modules each top-level module of this crate names through `crate::` (api/ counts as `api`).
    fn uses() -> BTreeMap<String, BTreeSet<String>> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()) {
                if e.is_dir() { dirs.push(e) } else if e.extension().is_some_and(|x| x == "rs") { files.push(e) }
            }
        }
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in files {
            let rel = f.strip_prefix(&src).unwrap();
            let module = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
            if ["lib", "bin"].contains(&module.as_str()) {
                continue;
            }
            // Code only: doc links to other modules are not uses.
            let text: String = std::fs::read_to_string(&f).unwrap().lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            let entry = uses.entry(module.clone()).or_default();
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                // Re-exports at the crate root (NodeError, Node, Config, ...) are capitalised; modules are not.
                if !name.is_empty() && name.chars().next().unwrap().is_ascii_lowercase() && name != module {
                    entry.insert(name);
                }
            }
        }
        uses
    }

    #[test]
    fn no_module_of_the_node_crate_is_in_an_import_circle() {
        let uses = uses();
        assert!(uses["offers"].contains("payments") && uses["channels"].contains("splice"), "the scan sees uses: {uses:?}");
        // Depth-first search for a path back to where it started.
        fn reaches(uses: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, seen: &mut BTreeSet<String>, path: &mut Vec<String>) -> bool {
            for next in uses.get(from).into_iter().flatten() {
                if next == to || (seen.insert(next.clone()) && reaches(uses, next, to, seen, path)) {
                    path.push(next.clone());
                    return true;
                }
            }
            false
        }
        for module in uses.keys() {
            let mut path = Vec::new();
            if reaches(&uses, module, module, &mut BTreeSet::new(), &mut path) {
                path.reverse();
                panic!("import circle: {module} -> {}", path.join(" -> "));
            }
        }
    }
}
