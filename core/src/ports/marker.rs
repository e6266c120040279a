//! A record of how far the state got, kept beside the database (`state.db.marker`): the newest
//! event's sequence and the number of allocations. SQLite keeps what it committed, but a file
//! replaced by an empty one, or a write-ahead log damaged after a crash, loses committed
//! changes silently; the marker, written by the daemon every second while things change and at
//! shutdown, tells. At start-up a database behind its marker is refused (unless the operator
//! accepts the loss): handing out ports that live owners hold is worse than not starting.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the last daemon saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Marker {
    pub last_sequence: u64,
    pub allocations: usize,
}

pub fn path_for(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".marker");
    PathBuf::from(p)
}

/// The marker beside `state`, if there is one (an unreadable one is reported, not ignored).
pub fn read(state: &Path) -> Result<Option<Marker>, String> {
    let path = path_for(state);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a marker this daemon wrote: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes the marker (to a temporary file renamed into place: never half a marker).
pub fn write(state: &Path, m: &Marker) -> std::io::Result<()> {
    let path = path_for(state);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, serde_json::to_vec(m).unwrap_or_default())?;
    std::fs::rename(&tmp, &path)
}

/// Why the database (`found`) cannot be the state the marker describes, if it cannot.
pub fn shrank(marker: &Marker, found_last_sequence: u64) -> Option<String> {
    (found_last_sequence < marker.last_sequence).then(|| {
        format!(
            "the database's newest change is number {found_last_sequence}, but the daemon that \
             last ran had recorded up to number {} (with {} allocations): committed changes are \
             missing",
            marker.last_sequence, marker.allocations
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_and_a_shrunken_database_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        assert_eq!(read(&state), Ok(None));
        let m = Marker {
            last_sequence: 300,
            allocations: 600,
        };
        write(&state, &m).unwrap();
        assert_eq!(read(&state), Ok(Some(m)));
        assert!(shrank(&m, 300).is_none());
        assert!(shrank(&m, 301).is_none());
        assert!(shrank(&m, 153).unwrap().contains("number 153"));
        std::fs::write(path_for(&state), "garbage").unwrap();
        assert!(read(&state).is_err());
    }
}
