//! Owns dominant-speaker detection for one conference: RFC 6464 audio levels per endpoint are
//! averaged over fixed windows (~1 s), smoothed across windows, and the loudest endpoint becomes
//! dominant only when it beats the current one by a hysteresis margin, so short interjections and
//! noise do not flip the choice.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Tuning of the detector.
#[derive(Debug, Clone, Copy)]
pub struct SpeakerConfig {
    /// Length of an averaging window.
    pub window: Duration,
    /// Weight of the newest window in the smoothed loudness (0..=1).
    pub alpha: f32,
    /// Loudness margin (dB) a challenger needs over the current dominant speaker.
    pub hysteresis: f32,
    /// Smoothed loudness (dB above -127 dBov) below which nobody is considered speaking.
    pub min_loudness: f32,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(1000),
            alpha: 0.5,
            hysteresis: 6.0,
            min_loudness: 40.0,
        }
    }
}

#[derive(Default)]
struct Speaker {
    sum: u32,
    count: u32,
    smoothed: f32,
}

/// Dominant-speaker detector over endpoints identified by `K`.
pub struct DominantSpeaker<K> {
    config: SpeakerConfig,
    window_start: Option<Instant>,
    speakers: HashMap<K, Speaker>,
    current: Option<K>,
}

impl<K: Clone + Eq + Hash> DominantSpeaker<K> {
    /// A detector with no speakers.
    pub fn new(config: SpeakerConfig) -> Self {
        Self {
            config,
            window_start: None,
            speakers: HashMap::new(),
            current: None,
        }
    }

    /// Records one audio level sample: `level` is -dBov (0 loudest, 127 silence).
    pub fn on_level(&mut self, now: Instant, who: &K, level: u8) {
        if self.window_start.is_none() {
            self.window_start = Some(now);
        }
        let loudness = 127u32.saturating_sub(u32::from(level.min(127)));
        let s = self.speakers.entry(who.clone()).or_default();
        s.sum = s.sum.saturating_add(loudness);
        s.count = s.count.saturating_add(1);
    }

    /// When the current window closes, if any samples are being tracked.
    pub fn next_tick(&self) -> Option<Instant> {
        self.window_start.map(|s| s + self.config.window)
    }

    /// Closes the window if it is due; returns the new dominant speaker when it changed.
    pub fn tick(&mut self, now: Instant) -> Option<K> {
        let due = self.next_tick()?;
        if now < due {
            return None;
        }
        let alpha = self.config.alpha;
        for s in self.speakers.values_mut() {
            let avg = if s.count > 0 {
                s.sum as f32 / s.count as f32
            } else {
                0.0
            };
            s.smoothed = alpha * avg + (1.0 - alpha) * s.smoothed;
            s.sum = 0;
            s.count = 0;
        }
        self.speakers.retain(|_, s| s.smoothed >= 0.5);
        self.window_start = if self.speakers.is_empty() {
            None
        } else {
            Some(now)
        };

        let loudest = self
            .speakers
            .iter()
            .filter(|(_, s)| s.smoothed >= self.config.min_loudness)
            .max_by(|a, b| a.1.smoothed.total_cmp(&b.1.smoothed))
            .map(|(k, s)| (k.clone(), s.smoothed))?;
        let current_loudness = self
            .current
            .as_ref()
            .and_then(|c| self.speakers.get(c))
            .map(|s| s.smoothed);
        let switch = match (&self.current, current_loudness) {
            (Some(c), _) if *c == loudest.0 => false,
            (Some(_), Some(cur)) if cur >= self.config.min_loudness => {
                loudest.1 > cur + self.config.hysteresis
            }
            _ => true,
        };
        if switch {
            self.current = Some(loudest.0.clone());
            Some(loudest.0)
        } else {
            None
        }
    }

    /// Forgets an endpoint (it left); it stops being dominant without an event.
    pub fn remove(&mut self, who: &K) {
        self.speakers.remove(who);
        if self.current.as_ref() == Some(who) {
            self.current = None;
        }
    }

    /// The current dominant speaker.
    pub fn current(&self) -> Option<&K> {
        self.current.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `secs` seconds of 50 samples/s per speaker and returns the changes seen.
    fn run(
        d: &mut DominantSpeaker<&'static str>,
        start: Instant,
        from_ms: u64,
        secs: u64,
        levels: &[(&'static str, u8)],
    ) -> Vec<&'static str> {
        let mut changes = vec![];
        for i in 0..secs * 50 {
            let now = start + Duration::from_millis(from_ms + i * 20);
            for (who, level) in levels {
                d.on_level(now, who, *level);
            }
            if let Some(c) = d.tick(now) {
                changes.push(c);
            }
        }
        changes
    }

    #[test]
    fn loudest_becomes_dominant_and_hysteresis_holds() {
        let t0 = Instant::now();
        let mut d = DominantSpeaker::new(SpeakerConfig::default());
        // A speaks (-30 dBov), B is near silent.
        let c = run(&mut d, t0, 0, 3, &[("a", 30), ("b", 110)]);
        assert_eq!(c, vec!["a"]);
        // B only slightly louder than A: within the hysteresis, A stays.
        let c = run(&mut d, t0, 3000, 3, &[("a", 30), ("b", 27)]);
        assert!(c.is_empty(), "{c:?}");
        // B clearly louder and A quiet: B takes over.
        let c = run(&mut d, t0, 6000, 4, &[("a", 100), ("b", 20)]);
        assert_eq!(c, vec!["b"]);
        assert_eq!(d.current(), Some(&"b"));
    }

    #[test]
    fn silence_elects_nobody_and_removal_clears() {
        let t0 = Instant::now();
        let mut d = DominantSpeaker::new(SpeakerConfig::default());
        assert!(run(&mut d, t0, 0, 3, &[("a", 127), ("b", 120)]).is_empty());
        assert_eq!(run(&mut d, t0, 3000, 2, &[("a", 10)]), vec!["a"]);
        d.remove(&"a");
        assert_eq!(d.current(), None);
        // With no samples at all the detector stops asking for ticks.
        let mut idle = DominantSpeaker::<&str>::new(SpeakerConfig::default());
        assert_eq!(idle.next_tick(), None);
        assert_eq!(idle.tick(t0), None);
    }
}
