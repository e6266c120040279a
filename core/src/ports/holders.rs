//! Who listens on a port, as one caller may learn it: root, and the user whose socket it is,
//! see "pid 12 (nginx)" (or, when the daemon's /proc shows no holder, why: another PID
//! namespace, or descriptors the daemon may not read); anyone else learns only that another
//! user's process holds it. One LISTEN-only dump and at most one walk of /proc answer for any
//! number of ports.

use std::collections::{HashMap, HashSet};

use crate::network::{holders_by_inode, listeners_on};

/// Said of a listener the caller may not see.
const SOMEONE_ELSE: &str = "another user's process";

/// For each of `ports` with a listener: who holds it, in words, as `viewer` may see it.
pub(super) fn holders(ports: &[u16], viewer: Option<u32>) -> HashMap<u16, String> {
    let wanted: HashSet<u16> = ports.iter().copied().collect();
    let Ok(listeners) = listeners_on(&wanted) else {
        return HashMap::new();
    };
    let may_see = |uid: u32| viewer == Some(0) || viewer == Some(uid);
    let visible: HashSet<u64> = listeners
        .values()
        .flatten()
        .filter(|(_, uid)| may_see(*uid))
        .map(|(inode, _)| *inode)
        .collect();
    let walk = holders_by_inode(&visible);
    listeners
        .into_iter()
        .map(|(port, sockets)| {
            let mut names: Vec<String> = Vec::new();
            for (inode, uid) in sockets {
                let said: Vec<String> = if may_see(uid) {
                    match walk.holders.get(&inode) {
                        Some(ps) => ps.iter().map(ToString::to_string).collect(),
                        None => vec![walk.unseen_holder(Some(uid), "the daemon")],
                    }
                } else {
                    vec![SOMEONE_ELSE.to_string()]
                };
                for s in said {
                    if !names.contains(&s) {
                        names.push(s);
                    }
                }
            }
            (port, names.join(", "))
        })
        .filter(|(_, said)| !said.is_empty())
        .collect()
}
