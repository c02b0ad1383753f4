//! Capped exponential backoff with jitter, shared by source polling and alert delivery.

use std::time::Duration;

/// Delay before retry number `attempt` (0 = first retry): `initial × 2^attempt`, capped at `max`, then jittered
/// into its upper half so that many failures at once do not retry in lockstep.
pub fn delay(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
    let capped = exp.min(max).max(Duration::from_millis(1));
    let half = capped / 2;
    half + half.mul_f64(fastrand::f64())
}

/// `base` scaled by a random factor in `[1 - spread, 1 + spread]`, to keep sources from polling in lockstep.
pub fn jitter(base: Duration, spread: f64) -> Duration {
    base.mul_f64(1.0 + spread * (2.0 * fastrand::f64() - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubles_and_caps_with_jitter_in_the_upper_half() {
        let s = Duration::from_secs;
        for _ in 0..200 {
            let d0 = delay(0, s(2), s(60));
            assert!(d0 >= s(1) && d0 <= s(2), "{d0:?}");
            let d3 = delay(3, s(2), s(60));
            assert!(d3 >= s(8) && d3 <= s(16), "{d3:?}");
            let d20 = delay(20, s(2), s(60));
            assert!(d20 >= s(30) && d20 <= s(60), "{d20:?}");
            let j = jitter(s(100), 0.1);
            assert!(j >= s(90) && j <= s(110), "{j:?}");
        }
        assert!(delay(u32::MAX, s(2), s(60)) <= s(60));
    }
}
