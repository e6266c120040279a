//! Service names belong to the uid that first used one: its sticky port and its history are that
//! user's, so another local user calling itself `payments` is refused instead of taking
//! payments' port. Root may use any name. A name first used by a caller that could not be
//! identified belongs to nobody; names the daemon made up itself (portpicker requests) are
//! never bound. The bindings are stored with the allocation that made them.

use std::collections::HashMap;

use super::error::PortsError;

#[derive(Debug, Default)]
pub(super) struct ServiceNames {
    owners: HashMap<String, u32>,
}

impl ServiceNames {
    pub fn from_stored(owners: HashMap<String, u32>) -> Self {
        Self { owners }
    }

    /// Whether `uid` may allocate for `service`: the name is free, or its own, or `uid` is
    /// root. A caller that cannot be identified may use only names nobody owns.
    pub fn check(&self, service: &str, uid: Option<u32>) -> Result<(), PortsError> {
        match (self.owners.get(service), uid) {
            (None, _) | (_, Some(0)) => Ok(()),
            (Some(owner), Some(uid)) if *owner == uid => Ok(()),
            (Some(owner), _) => Err(PortsError::NameTaken {
                service: service.to_string(),
                owner_uid: *owner,
            }),
        }
    }

    /// The uid to bind `service` to with this allocation: the caller's, when the name is not
    /// yet bound (root binds the names it uses first too).
    pub fn to_bind(&self, service: &str, uid: Option<u32>) -> Option<u32> {
        uid.filter(|_| !self.owners.contains_key(service))
    }

    pub fn bind(&mut self, service: &str, uid: u32) {
        self.owners.entry(service.to_string()).or_insert(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_its_first_users_and_roots() {
        let mut names = ServiceNames::default();
        assert!(names.check("payments", Some(1000)).is_ok());
        assert_eq!(names.to_bind("payments", Some(1000)), Some(1000));
        names.bind("payments", 1000);
        assert!(names.check("payments", Some(1000)).is_ok());
        assert!(names.check("payments", Some(0)).is_ok());
        assert!(matches!(
            names.check("payments", Some(1001)),
            Err(PortsError::NameTaken {
                owner_uid: 1000,
                ..
            })
        ));
        assert!(names.check("payments", None).is_err());
        assert_eq!(names.to_bind("payments", Some(0)), None, "bound already");
        assert!(names.check("unbound", None).is_ok());
        assert_eq!(names.to_bind("unbound", None), None);
    }
}
