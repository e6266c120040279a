//! Network interfaces: every interface with its flags, operational state and addresses
//! (getifaddrs + /sys/class/net/*/operstate; on Windows GetAdaptersAddresses, what `ipconfig`
//! reads, loopback pseudo-interface included), and the loopback sanity check (present, up,
//! carrying 127.0.0.1).

use super::check::{names, CheckResult, CheckStatus};

/// One interface as seen by the check.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InterfaceState {
    pub name: String,
    pub up: bool,
    pub running: bool,
    pub loopback: bool,
    /// `/sys/class/net/<name>/operstate` (`up`, `down`, `unknown`, ...).
    pub operstate: Option<String>,
    pub addresses: Vec<String>,
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::ffi::CStr;
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::InterfaceState;

    /// Frees the getifaddrs list when dropped.
    struct InterfaceList(*mut libc::ifaddrs);

    impl Drop for InterfaceList {
        fn drop(&mut self) {
            // SAFETY: the pointer came from a successful getifaddrs and is freed exactly once.
            unsafe { libc::freeifaddrs(self.0) }
        }
    }

    fn address_of(address: *const libc::sockaddr) -> Option<String> {
        if address.is_null() {
            return None;
        }
        // SAFETY: non-null sockaddr from getifaddrs; sa_family says which struct it is, and
        // read_unaligned copes with any alignment.
        unsafe {
            match i32::from((*address).sa_family) {
                libc::AF_INET => {
                    let v4 = std::ptr::read_unaligned(address.cast::<libc::sockaddr_in>());
                    Some(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)).to_string())
                }
                libc::AF_INET6 => {
                    let v6 = std::ptr::read_unaligned(address.cast::<libc::sockaddr_in6>());
                    Some(Ipv6Addr::from(v6.sin6_addr.s6_addr).to_string())
                }
                _ => None,
            }
        }
    }

    /// All interfaces, keyed by name.
    pub fn list() -> io::Result<Vec<InterfaceState>> {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs writes a list head we free through InterfaceList.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let list = InterfaceList(head);
        let mut interfaces: BTreeMap<String, InterfaceState> = BTreeMap::new();
        let mut cursor = list.0;
        while !cursor.is_null() {
            // SAFETY: cursor walks the list returned by getifaddrs, which stays alive until
            // `list` is dropped; ifa_name is a valid C string.
            let entry = unsafe { &*cursor };
            let name = unsafe { CStr::from_ptr(entry.ifa_name) }
                .to_string_lossy()
                .into_owned();
            let flags = entry.ifa_flags as i32;
            let state = interfaces
                .entry(name.clone())
                .or_insert_with(|| InterfaceState {
                    name,
                    ..InterfaceState::default()
                });
            state.up |= flags & libc::IFF_UP != 0;
            state.running |= flags & libc::IFF_RUNNING != 0;
            state.loopback |= flags & libc::IFF_LOOPBACK != 0;
            if let Some(address) = address_of(entry.ifa_addr) {
                state.addresses.push(address);
            }
            cursor = entry.ifa_next;
        }
        drop(list);
        let mut interfaces: Vec<InterfaceState> = interfaces.into_values().collect();
        for interface in &mut interfaces {
            let path = format!("/sys/class/net/{}/operstate", interface.name);
            interface.operstate = std::fs::read_to_string(path)
                .ok()
                .map(|text| text.trim().to_string());
        }
        Ok(interfaces)
    }
}

/// Judges a list of interfaces: no loopback, loopback down, or no 127.0.0.1: critical.
pub fn evaluate_interfaces(interfaces: &[InterfaceState]) -> CheckResult {
    let loopback = interfaces.iter().find(|interface| interface.loopback);
    let has_localhost = loopback.is_some();
    let loopback_up = loopback.is_some_and(|interface| interface.up);
    let loopback_has_127 = interfaces
        .iter()
        .filter(|interface| interface.loopback)
        .any(|interface| {
            interface
                .addresses
                .iter()
                .any(|address| address == "127.0.0.1")
        });
    let external: Vec<&InterfaceState> = interfaces
        .iter()
        .filter(|interface| !interface.loopback && interface.up)
        .collect();
    let per_interface: serde_json::Map<String, serde_json::Value> = interfaces
        .iter()
        .map(|interface| {
            (
                interface.name.clone(),
                serde_json::json!({
                    "up": interface.up,
                    "running": interface.running,
                    "loopback": interface.loopback,
                    "operstate": interface.operstate,
                    "addresses": interface.addresses,
                }),
            )
        })
        .collect();

    let (status, note) = if !has_localhost {
        (CheckStatus::Critical, "No loopback interface".to_string())
    } else if !loopback_up {
        (
            CheckStatus::Critical,
            "Loopback interface is down".to_string(),
        )
    } else if !loopback_has_127 {
        (
            CheckStatus::Critical,
            "Loopback does not carry 127.0.0.1".to_string(),
        )
    } else {
        (
            CheckStatus::Ok,
            format!(
                "{} interfaces, localhost OK, {} external up",
                interfaces.len(),
                external.len()
            ),
        )
    };
    let mut result = CheckResult::new(names::NETWORK_INTERFACES, status, note)
        .with_field("total_interfaces", interfaces.len())
        .with_field("has_localhost", has_localhost)
        .with_field("loopback_up", loopback_up)
        .with_field("loopback_has_127_0_0_1", loopback_has_127)
        .with_field("external_interfaces", external.len())
        .with_field("interfaces", per_interface);
    if status == CheckStatus::Critical {
        result.recommendation =
            Some("Bring loopback up with 127.0.0.1/8: `ip link set lo up; ip addr add 127.0.0.1/8 dev lo`".into());
    }
    result
}

/// Lists interfaces and judges them.
#[cfg(target_os = "linux")]
pub fn network_interfaces() -> CheckResult {
    match linux::list() {
        Ok(interfaces) => evaluate_interfaces(&interfaces),
        Err(error) => CheckResult::new(
            names::NETWORK_INTERFACES,
            CheckStatus::Warning,
            format!("cannot list interfaces: {error}"),
        )
        .with_field("error", error.to_string()),
    }
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use windows_sys::Win32::Foundation::{ERROR_BUFFER_OVERFLOW, ERROR_NO_DATA};
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetAdaptersAddresses, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_DNS_SERVER,
        GAA_FLAG_SKIP_MULTICAST, IF_TYPE_SOFTWARE_LOOPBACK, IP_ADAPTER_ADDRESSES_LH,
    };
    use windows_sys::Win32::NetworkManagement::Ndis::IfOperStatusUp;
    use windows_sys::Win32::Networking::WinSock::{
        AF_INET, AF_INET6, AF_UNSPEC, SOCKADDR, SOCKADDR_IN, SOCKADDR_IN6,
    };

    use super::InterfaceState;

    /// A NUL-terminated UTF-16 string owned by the adapter list.
    ///
    /// # Safety
    /// `p` is null or points to a NUL-terminated UTF-16 string.
    unsafe fn wide(p: *const u16) -> String {
        if p.is_null() {
            return String::new();
        }
        let mut len = 0;
        // SAFETY: the string is NUL-terminated (the caller's promise).
        while unsafe { *p.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: `len` units were just read.
        String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
    }

    /// # Safety
    /// `address` is null or points to a socket address of its family's size.
    unsafe fn address_of(address: *const SOCKADDR) -> Option<String> {
        if address.is_null() {
            return None;
        }
        // SAFETY: non-null, and the family says which structure it is.
        unsafe {
            match (*address).sa_family {
                AF_INET => {
                    let v4 = std::ptr::read_unaligned(address.cast::<SOCKADDR_IN>());
                    Some(Ipv4Addr::from(u32::from_be(v4.sin_addr.S_un.S_addr)).to_string())
                }
                AF_INET6 => {
                    let v6 = std::ptr::read_unaligned(address.cast::<SOCKADDR_IN6>());
                    Some(Ipv6Addr::from(v6.sin6_addr.u.Byte).to_string())
                }
                _ => None,
            }
        }
    }

    pub fn list() -> io::Result<Vec<InterfaceState>> {
        let flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER;
        let mut size: u32 = 16 * 1024;
        // The list can grow between the call that sizes it and the one that fills it.
        for _ in 0..4 {
            // u64 elements: the adapter records need 8-byte alignment.
            let mut buffer = vec![0u64; (size as usize).div_ceil(8)];
            // SAFETY: the buffer holds `size` bytes, as the call is told.
            let rc = unsafe {
                GetAdaptersAddresses(
                    u32::from(AF_UNSPEC),
                    flags,
                    std::ptr::null(),
                    buffer.as_mut_ptr().cast(),
                    &mut size,
                )
            };
            match rc {
                0 => {}
                ERROR_BUFFER_OVERFLOW => continue,
                ERROR_NO_DATA => return Ok(Vec::new()),
                other => return Err(io::Error::from_raw_os_error(other as i32)),
            }
            let mut interfaces = Vec::new();
            let mut adapter = buffer.as_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
            // SAFETY: a linked list inside `buffer`, as the call wrote it; every pointer it
            // holds points into the buffer, which outlives the walk.
            unsafe {
                while !adapter.is_null() {
                    let a = &*adapter;
                    let up = a.OperStatus == IfOperStatusUp;
                    let mut addresses = Vec::new();
                    let mut unicast = a.FirstUnicastAddress;
                    while !unicast.is_null() {
                        addresses.extend(address_of((*unicast).Address.lpSockaddr));
                        unicast = (*unicast).Next;
                    }
                    interfaces.push(InterfaceState {
                        name: wide(a.FriendlyName),
                        up,
                        running: up,
                        loopback: a.IfType == IF_TYPE_SOFTWARE_LOOPBACK,
                        operstate: Some(if up { "up" } else { "down" }.to_string()),
                        addresses,
                    });
                    adapter = a.Next;
                }
            }
            return Ok(interfaces);
        }
        Err(io::Error::other("the adapter list kept growing"))
    }
}

/// Lists interfaces (GetAdaptersAddresses) and judges them.
#[cfg(windows)]
pub fn network_interfaces() -> CheckResult {
    match windows::list() {
        Ok(interfaces) => {
            evaluate_interfaces(&interfaces).with_field("source", "GetAdaptersAddresses")
        }
        Err(error) => CheckResult::new(
            names::NETWORK_INTERFACES,
            CheckStatus::Warning,
            format!("cannot list interfaces: {error}"),
        )
        .with_field("error", error.to_string())
        .with_field("source", "GetAdaptersAddresses"),
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn network_interfaces() -> CheckResult {
    CheckResult::unsupported(names::NETWORK_INTERFACES)
}
