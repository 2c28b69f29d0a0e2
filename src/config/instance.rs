//! The device identity behind `+sip.instance` (RFC 5626 §4.1), as pure functions: the
//! MAC address in an Aastra per-device file name, the name-based UUID made from it, and
//! the random UUID a device without one gets once. Choosing among them and keeping the
//! generated one in a file is the runtime's job (`runtime::device_instance_id`).
//!
//! RFC 5626 wants the instance identifier to stay the same across restarts of one device
//! and to differ between devices; the seed cannot give that (it changes at every start
//! when random, and is shared by every phone when pinned in a shared `aastra.cfg`).

use sha2::{Digest, Sha256};

/// Namespace of the MAC-based identifiers: a fixed UUID of sip-ptls's own, so that the
/// same MAC gives the same identifier in every version and no other name-based UUID
/// made from the same six bytes collides with it.
const MAC_NAMESPACE: [u8; 16] =
    [0x5b, 0x1f, 0x3c, 0x8e, 0x2a, 0x7d, 0x4e, 0x61, 0x9c, 0x0b, 0x6f, 0x13, 0xd2, 0x48, 0xa5, 0x97];

/// The MAC address of an Aastra per-device file name: `00085D1A2B3C.cfg` (12 hex
/// digits, any case, then `.cfg`). Only the final path component is looked at.
pub fn mac_from_file_name(path: &str) -> Option<[u8; 6]> {
    let file = path.rsplit(['/', '\\']).next()?;
    let (stem, extension) = file.rsplit_once('.')?;
    if !extension.eq_ignore_ascii_case("cfg") || stem.len() != 12 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, byte) in mac.iter_mut().enumerate() {
        *byte = u8::from_str_radix(stem.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(mac)
}

/// The instance identifier of the device with this MAC address: a name-based UUID, the
/// same at every start and on every machine that runs this device's files.
///
/// Version 8 with SHA-256, as RFC 9562 §6.5 and Appendix B.2 describe for name-based
/// UUIDs that do not use MD5 (version 3) or SHA-1 (version 5): the crate already carries
/// SHA-256 and neither of the others, and both are deprecated hashes. Version 1 would
/// need a clock reading (a different UUID each time it is made) and would put the MAC
/// itself on the wire; a hash of it does not.
pub fn from_mac(mac: [u8; 6]) -> String {
    let mut hash = Sha256::new();
    hash.update(MAC_NAMESPACE);
    hash.update(mac);
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    urn(bytes, 8)
}

/// A random (version 4) instance identifier from 16 bytes of OS randomness, for a device
/// without a MAC file; the runtime makes it once and keeps it.
pub fn from_random(bytes: [u8; 16]) -> String {
    urn(bytes, 4)
}

/// Why `id` cannot be an instance identifier (the rule of `Config::validate`), or `None`.
pub fn problem(id: &str) -> Option<String> {
    super::syntax::instance_id(id)
}

/// `urn:uuid:` form with the version nibble and the RFC 9562 variant bits set.
fn urn(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("urn:uuid:{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_file_names_are_twelve_hex_digits_then_cfg() {
        let mac = [0x00, 0x08, 0x5d, 0x1a, 0x2b, 0x3c];
        assert_eq!(mac_from_file_name("00085D1A2B3C.cfg"), Some(mac));
        assert_eq!(mac_from_file_name("/etc/phones/00085d1a2b3c.CFG"), Some(mac));
        for not in
            ["aastra.cfg", "6737i.cfg", "00085D1A2B3.cfg", "00085D1A2B3CD.cfg", "00085D1A2B3G.cfg", "00085D1A2B3C"]
        {
            assert_eq!(mac_from_file_name(not), None, "{not}");
        }
    }

    #[test]
    fn the_same_mac_gives_the_same_id_and_two_macs_differ() {
        let a = from_mac([0, 8, 0x5d, 0x1a, 0x2b, 0x3c]);
        assert_eq!(a, from_mac([0, 8, 0x5d, 0x1a, 0x2b, 0x3c]));
        assert_ne!(a, from_mac([0, 8, 0x5d, 0x1a, 0x2b, 0x3d]));
        // Pinned: a change here would give every deployed phone a new identity.
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[9 + 14..9 + 15], "8", "version 8");
        assert!(matches!(&a[9 + 19..9 + 20], "8" | "9" | "a" | "b"), "RFC 9562 variant");
        assert_eq!(problem(&a), None);
    }

    #[test]
    fn random_ids_are_version_4() {
        let id = from_random([0xff; 16]);
        assert_eq!(id, "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(problem(&id), None);
    }
}
