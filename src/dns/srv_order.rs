//! The order in which SRV targets are tried (RFC 2782): ascending priority, and inside
//! one priority the weighted random selection of the RFC, drawn from the core's seeded
//! generator so that the same seed gives the same order.

use super::name;
use super::records::SrvRecord;
use crate::rng::Rng;

/// The usable records of an SRV answer in the order to try them, each target normalized.
///
/// - A target of `"."` means the service is not offered at that name (RFC 2782): a lone
///   such record gives no target, and one among others is skipped.
/// - A record with port 0, or a target DNS cannot carry, is skipped.
/// - A target given twice with the same port is kept once, with its lowest priority
///   (the first of those records in the server's order).
/// - Priorities ascend. Inside a priority, RFC 2782's selection: the records of weight 0
///   first, then the others in the server's order; a number drawn in `0..=sum` of the
///   weights left picks the first record whose running sum reaches it; that record is
///   next, and the draw is repeated over the rest. A record's chance to come first is
///   thus about its weight over the sum; weight-0 records come first only by a draw
///   of 0 and otherwise last.
pub fn order(records: &[SrvRecord], rng: &mut Rng) -> Vec<SrvRecord> {
    let mut usable: Vec<SrvRecord> = records
        .iter()
        .filter(|r| r.port != 0)
        .map(|r| SrvRecord { target: name::normalize(&r.target), ..r.clone() })
        .filter(|r| name::is_valid(&r.target))
        .collect();
    // Stable: records of one priority keep the server's order, which the draw needs.
    usable.sort_by_key(|r| r.priority);
    let mut unique: Vec<SrvRecord> = Vec::with_capacity(usable.len());
    for record in usable {
        if !unique.iter().any(|u| u.target == record.target && u.port == record.port) {
            unique.push(record);
        }
    }
    let mut ordered = Vec::with_capacity(unique.len());
    let mut rest = unique.as_slice();
    while let Some(first) = rest.first() {
        let same = rest.iter().take_while(|r| r.priority == first.priority).count();
        let (group, after) = rest.split_at(same);
        ordered.extend(weighted(group, rng));
        rest = after;
    }
    ordered
}

/// One priority's records in RFC 2782's weighted order.
fn weighted(group: &[SrvRecord], rng: &mut Rng) -> Vec<SrvRecord> {
    let mut pool: Vec<SrvRecord> = group.iter().filter(|r| r.weight == 0).cloned().collect();
    pool.extend(group.iter().filter(|r| r.weight != 0).cloned());
    let mut out = Vec::with_capacity(pool.len());
    while pool.len() > 1 {
        let sum: u64 = pool.iter().map(|r| u64::from(r.weight)).sum();
        let drawn = rng.between(0, sum);
        let mut running = 0u64;
        let at = pool
            .iter()
            .position(|r| {
                running += u64::from(r.weight);
                running >= drawn
            })
            // The last running sum is `sum`, which every draw reaches.
            .unwrap_or(pool.len() - 1);
        out.push(pool.remove(at));
    }
    out.append(&mut pool);
    out
}

#[cfg(test)]
mod tests {
    use super::order;
    use crate::dns::records::SrvRecord;
    use crate::rng::{Rng, Seed};

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord { priority, weight, port, target: target.into(), ttl: 300 }
    }

    fn targets(records: &[SrvRecord]) -> Vec<&str> {
        records.iter().map(|r| r.target.as_str()).collect()
    }

    #[test]
    fn lower_priority_first() {
        let records =
            [srv(20, 0, 5061, "c.example.com"), srv(10, 0, 5061, "a.example.com"), srv(15, 5, 5061, "b.example.com")];
        let ordered = order(&records, &mut Rng::new(Seed::from(1)));
        assert_eq!(targets(&ordered), ["a.example.com", "b.example.com", "c.example.com"]);
    }

    #[test]
    fn a_lone_root_target_means_no_service() {
        assert!(order(&[srv(0, 0, 5061, ".")], &mut Rng::new(Seed::from(1))).is_empty());
        let mixed = [srv(0, 0, 5061, "."), srv(10, 0, 5061, "sip.example.com")];
        assert_eq!(targets(&order(&mixed, &mut Rng::new(Seed::from(1)))), ["sip.example.com"]);
        assert!(order(&[], &mut Rng::new(Seed::from(1))).is_empty());
    }

    #[test]
    fn port_zero_and_bad_names_are_skipped() {
        let records =
            [srv(0, 0, 0, "a.example.com"), srv(0, 0, 5061, "b example.com"), srv(1, 0, 5061, "c.example.com")];
        assert_eq!(targets(&order(&records, &mut Rng::new(Seed::from(1)))), ["c.example.com"]);
    }

    #[test]
    fn duplicates_are_kept_once_at_their_best_priority() {
        let records = [
            srv(20, 0, 5061, "A.example.com."),
            srv(10, 0, 5061, "b.example.com"),
            srv(10, 0, 5061, "a.example.com"),
            srv(30, 0, 5062, "a.example.com"),
        ];
        let ordered = order(&records, &mut Rng::new(Seed::from(1)));
        let pairs: Vec<(u16, &str, u16)> = ordered.iter().map(|r| (r.priority, r.target.as_str(), r.port)).collect();
        assert_eq!(pairs[2], (30, "a.example.com", 5062));
        assert_eq!(pairs.len(), 3);
        assert!(pairs[..2].contains(&(10, "a.example.com", 5061)));
    }

    #[test]
    fn all_zero_weights_keep_the_servers_order() {
        let records =
            [srv(0, 0, 5061, "a.example.com"), srv(0, 0, 5061, "b.example.com"), srv(0, 0, 5061, "c.example.com")];
        for seed in 0..50 {
            let ordered = order(&records, &mut Rng::new(Seed::from(seed)));
            assert_eq!(targets(&ordered), ["a.example.com", "b.example.com", "c.example.com"]);
        }
    }

    #[test]
    fn weight_zero_comes_last_almost_always() {
        let records = [srv(0, 0, 5061, "zero.example.com"), srv(0, 1000, 5061, "heavy.example.com")];
        let first_zero = (0..500)
            .filter(|seed| order(&records, &mut Rng::new(Seed::from(*seed)))[0].target == "zero.example.com")
            .count();
        // The chance is 1 in 1001.
        assert!(first_zero <= 3, "{first_zero}");
    }

    #[test]
    fn the_weights_share_the_first_place() {
        let records = [srv(0, 10, 5061, "light.example.com"), srv(0, 30, 5061, "heavy.example.com")];
        let runs = 4000u32;
        let heavy_first = (0..u64::from(runs))
            .filter(|seed| order(&records, &mut Rng::new(Seed::from(*seed)))[0].target == "heavy.example.com")
            .count();
        let share = heavy_first as f64 / f64::from(runs);
        assert!((0.70..0.80).contains(&share), "{share}");
    }

    #[test]
    fn the_same_seed_gives_the_same_order() {
        let records: Vec<SrvRecord> = (0..6).map(|i| srv(0, 10 + i, 5061, &format!("t{i}.example.com"))).collect();
        let a = order(&records, &mut Rng::new(Seed::from(9)));
        let b = order(&records, &mut Rng::new(Seed::from(9)));
        assert_eq!(a, b);
        let differs = (0..20).any(|s| order(&records, &mut Rng::new(Seed::from(s))) != a);
        assert!(differs, "the order does not depend on the draw");
    }
}
