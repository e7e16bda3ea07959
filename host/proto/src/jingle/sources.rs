//! The sources one endpoint signals (`EndpointSources`): validated, normalized with Jitsi's
//! conventions, merged by `source-add`/`source-remove`, and stripped of simulcast layers.
//!
//! Core (pure). Invariants of a stored set: at most `MAX_SSRCS_PER_ENDPOINT` SSRCs, none twice
//! (and none the caller's `in_use` hook claimed for another endpoint); every group's SSRCs are
//! sources of the same media, FID groups hold exactly two; every source has `owner` = the
//! endpoint id, a `name` starting with `<ep>-` (else synthesized `<ep>-a<i>`/`<ep>-v<i>`,
//! shared by the SSRCs one group ties together) and an `msid` whose stream id is not `mixedmslabel`/`default`/`-`. A failed
//! `add`/`remove` changes nothing. Tests: jingle/tests.rs.

use std::collections::HashSet;

use super::{Content, JingleError, Media, Source, SsrcGroup};
use crate::stanza::{Condition, ErrorType, StanzaError};

/// Most SSRCs one endpoint may signal (audio and video together).
pub const MAX_SSRCS_PER_ENDPOINT: usize = 20;

/// The endpoint id Jicofo gives the bridge's own sources.
pub const BRIDGE_OWNER: &str = "jvb";

/// Why an endpoint's sources were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The endpoint would have more SSRCs than allowed.
    #[error("more than {limit} SSRCs")]
    TooManySsrcs {
        /// The bound.
        limit: usize,
    },
    /// An SSRC is signaled twice (or again after being added).
    #[error("SSRC {0} signaled twice")]
    DuplicateSsrc(u32),
    /// The caller's hook says another endpoint uses this SSRC.
    #[error("SSRC {0} is used by another endpoint")]
    SsrcInUse(u32),
    /// Sources in a content that is neither audio nor video.
    #[error("sources for unsupported media {0}")]
    UnsupportedMedia(String),
    /// An FID group does not hold exactly two SSRCs.
    #[error("FID group of {0} SSRCs")]
    FidSize(usize),
    /// A group holds no SSRC, or one SSRC twice.
    #[error("malformed {0} group")]
    BadGroup(String),
    /// A group names an SSRC that is not a source of its media.
    #[error("group names unknown SSRC {0}")]
    GroupUnknownSsrc(u32),
    /// `source-remove` of an SSRC the endpoint does not have.
    #[error("SSRC {0} is not a source of this endpoint")]
    UnknownSsrc(u32),
}

impl From<SourceError> for StanzaError {
    /// `modify/bad-request` with the reason as text (what Jicofo answers).
    fn from(e: SourceError) -> StanzaError {
        StanzaError::new(ErrorType::Modify, Condition::BadRequest).with_text(e.to_string())
    }
}

impl From<JingleError> for StanzaError {
    /// `modify/bad-request` with the reason as text.
    fn from(e: JingleError) -> StanzaError {
        StanzaError::new(ErrorType::Modify, Condition::BadRequest).with_text(e.to_string())
    }
}

/// The sources and groups of one media.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaSources {
    /// Sources in signaling order.
    pub sources: Vec<Source>,
    /// Groups in signaling order.
    pub groups: Vec<SsrcGroup>,
}

impl MediaSources {
    /// No sources and no groups.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.groups.is_empty()
    }

    /// Whether `ssrc` is one of the sources.
    pub fn contains(&self, ssrc: u32) -> bool {
        self.sources.iter().any(|s| s.ssrc == ssrc)
    }
}

/// Everything one endpoint signals, per media. (`Default` is an empty set of the endpoint `""`.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSources {
    endpoint: String,
    audio: MediaSources,
    video: MediaSources,
}

impl EndpointSources {
    /// An endpoint with no sources.
    pub fn new(endpoint: &str) -> EndpointSources {
        EndpointSources {
            endpoint: endpoint.to_owned(),
            audio: MediaSources::default(),
            video: MediaSources::default(),
        }
    }

    /// The bridge's own sources as Jicofo signals them: owner `jvb`, names `jvb-a0`/`jvb-v0`,
    /// msid `mixedmslabel mixedlabelaudio0`/`mixedmslabel mixedlabelvideo0`.
    pub fn bridge(audio_ssrc: u32, video_ssrc: u32) -> EndpointSources {
        let src = |ssrc, name: &str, msid: &str| Source {
            ssrc,
            name: Some(name.to_owned()),
            video_type: None,
            msid: Some(msid.to_owned()),
            owner: Some(BRIDGE_OWNER.to_owned()),
        };
        EndpointSources {
            endpoint: BRIDGE_OWNER.to_owned(),
            audio: MediaSources {
                sources: vec![src(audio_ssrc, "jvb-a0", "mixedmslabel mixedlabelaudio0")],
                groups: Vec::new(),
            },
            video: MediaSources {
                sources: vec![src(video_ssrc, "jvb-v0", "mixedmslabel mixedlabelvideo0")],
                groups: Vec::new(),
            },
        }
    }

    /// Validate and normalize the sources a client signaled (in `session-accept`). `in_use`
    /// answers whether another endpoint already uses an SSRC.
    ///
    /// # Errors
    /// As `add`.
    pub fn from_client(
        endpoint: &str,
        contents: &[Content],
        in_use: impl Fn(u32) -> bool,
    ) -> Result<EndpointSources, SourceError> {
        let mut set = EndpointSources::new(endpoint);
        set.add(contents, in_use)?;
        Ok(set)
    }

    /// The endpoint id.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Audio sources and groups.
    pub fn audio(&self) -> &MediaSources {
        &self.audio
    }

    /// Video sources and groups.
    pub fn video(&self) -> &MediaSources {
        &self.video
    }

    /// Every SSRC, audio first.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.audio
            .sources
            .iter()
            .chain(&self.video.sources)
            .map(|s| s.ssrc)
    }

    /// Number of SSRCs.
    pub fn len(&self) -> usize {
        self.audio.sources.len() + self.video.sources.len()
    }

    /// No sources and no groups.
    pub fn is_empty(&self) -> bool {
        self.audio.is_empty() && self.video.is_empty()
    }

    /// Whether `ssrc` is one of this endpoint's sources.
    pub fn contains(&self, ssrc: u32) -> bool {
        self.audio.contains(ssrc) || self.video.contains(ssrc)
    }

    /// Same as `contains`.
    pub fn has_ssrc(&self, ssrc: u32) -> bool {
        self.contains(ssrc)
    }

    /// What other endpoints are told of: `strip_simulcast`.
    pub fn for_receivers(&self) -> EndpointSources {
        self.strip_simulcast()
    }

    /// What changed from `self` to `now` (the same endpoint): `(added, removed)`, each `None`
    /// when empty. A source whose attributes changed is in both (remove, then add).
    pub fn diff(
        &self,
        now: &EndpointSources,
    ) -> (Option<EndpointSources>, Option<EndpointSources>) {
        let minus = |a: &MediaSources, b: &MediaSources| MediaSources {
            sources: a
                .sources
                .iter()
                .filter(|s| !b.sources.contains(s))
                .cloned()
                .collect(),
            groups: a
                .groups
                .iter()
                .filter(|g| !b.groups.contains(g))
                .cloned()
                .collect(),
        };
        let set = |audio: MediaSources, video: MediaSources| {
            let e = EndpointSources {
                endpoint: now.endpoint.clone(),
                audio,
                video,
            };
            (!e.is_empty()).then_some(e)
        };
        (
            set(
                minus(&now.audio, &self.audio),
                minus(&now.video, &self.video),
            ),
            set(
                minus(&self.audio, &now.audio),
                minus(&self.video, &now.video),
            ),
        )
    }

    /// Merge a `source-add` (or the sources of a `session-accept`). Returns what was added,
    /// normalized as stored (to forward to the other endpoints). A group already present is not
    /// added twice. Nothing changes on error.
    ///
    /// # Errors
    /// Sources in a non-audio/video content; an SSRC signaled twice or already present;
    /// `in_use` true for a new SSRC; more than `MAX_SSRCS_PER_ENDPOINT`; an FID group not of
    /// exactly two SSRCs; a group that is empty, repeats an SSRC or names an SSRC that is not a
    /// source of its media.
    pub fn add(
        &mut self,
        contents: &[Content],
        in_use: impl Fn(u32) -> bool,
    ) -> Result<EndpointSources, SourceError> {
        let mut merged = self.clone();
        let mut new_ssrcs = HashSet::new();
        let mut new_groups: Vec<(bool, SsrcGroup)> = Vec::new();
        for c in contents {
            let (is_video, media) = match &c.media {
                Media::Audio => (false, &mut merged.audio),
                Media::Video => (true, &mut merged.video),
                Media::Other(_) if c.sources.is_empty() && c.groups.is_empty() => continue,
                Media::Other(m) => return Err(SourceError::UnsupportedMedia(m.clone())),
            };
            for s in &c.sources {
                if self.contains(s.ssrc) || !new_ssrcs.insert(s.ssrc) {
                    return Err(SourceError::DuplicateSsrc(s.ssrc));
                }
                if in_use(s.ssrc) {
                    return Err(SourceError::SsrcInUse(s.ssrc));
                }
                if new_ssrcs.len() + self.len() > MAX_SSRCS_PER_ENDPOINT {
                    return Err(SourceError::TooManySsrcs {
                        limit: MAX_SSRCS_PER_ENDPOINT,
                    });
                }
                media.sources.push(s.clone());
            }
            for g in &c.groups {
                if !media.groups.contains(g) {
                    media.groups.push(g.clone());
                    new_groups.push((is_video, g.clone()));
                }
            }
        }
        for (is_video, media) in [(false, &mut merged.audio), (true, &mut merged.video)] {
            validate_groups(media)?;
            normalize(media, &self.endpoint, is_video);
        }
        let pick = |m: &MediaSources, is_video: bool| MediaSources {
            sources: m
                .sources
                .iter()
                .filter(|s| new_ssrcs.contains(&s.ssrc))
                .cloned()
                .collect(),
            groups: new_groups
                .iter()
                .filter(|(v, _)| *v == is_video)
                .map(|(_, g)| g.clone())
                .collect(),
        };
        let added = EndpointSources {
            endpoint: self.endpoint.clone(),
            audio: pick(&merged.audio, false),
            video: pick(&merged.video, true),
        };
        *self = merged;
        Ok(added)
    }

    /// Apply a `source-remove`. Every listed SSRC must be a source of the listed media; the
    /// listed groups and every group naming a removed SSRC go too. Returns what was removed, as
    /// it was stored. Nothing changes on error.
    ///
    /// # Errors
    /// `UnknownSsrc` for an SSRC this endpoint does not have in that media; `UnsupportedMedia`
    /// for sources in a non-audio/video content.
    pub fn remove(&mut self, contents: &[Content]) -> Result<EndpointSources, SourceError> {
        let mut kept = self.clone();
        let mut removed = EndpointSources::new(&self.endpoint);
        for c in contents {
            let (media, out) = match &c.media {
                Media::Audio => (&mut kept.audio, &mut removed.audio),
                Media::Video => (&mut kept.video, &mut removed.video),
                Media::Other(_) if c.sources.is_empty() && c.groups.is_empty() => continue,
                Media::Other(m) => return Err(SourceError::UnsupportedMedia(m.clone())),
            };
            for s in &c.sources {
                let Some(i) = media.sources.iter().position(|o| o.ssrc == s.ssrc) else {
                    return Err(SourceError::UnknownSsrc(s.ssrc));
                };
                out.sources.push(media.sources.remove(i));
            }
            let mut i = 0;
            while i < media.groups.len() {
                let g = &media.groups[i];
                if c.groups.contains(g)
                    || g.ssrcs
                        .iter()
                        .any(|s| out.sources.iter().any(|o| o.ssrc == *s))
                {
                    out.groups.push(media.groups.remove(i));
                } else {
                    i += 1;
                }
            }
        }
        *self = kept;
        Ok(removed)
    }

    /// The set with simulcast stripped, as Jicofo sends it to other clients: of every SIM
    /// group only the first SSRC stays; the other layers, the FID groups whose primary is such
    /// a layer and their RTX SSRCs, and the SIM groups themselves are dropped.
    pub fn strip_simulcast(&self) -> EndpointSources {
        EndpointSources {
            endpoint: self.endpoint.clone(),
            audio: strip(&self.audio),
            video: strip(&self.video),
        }
    }
}

fn strip(m: &MediaSources) -> MediaSources {
    let mut drop: HashSet<u32> = HashSet::new();
    for g in m.groups.iter().filter(|g| g.semantics == "SIM") {
        drop.extend(g.ssrcs.iter().skip(1));
    }
    for g in m.groups.iter().filter(|g| g.semantics == "FID") {
        if let [primary, rtx] = g.ssrcs[..]
            && drop.contains(&primary)
        {
            drop.insert(rtx);
        }
    }
    MediaSources {
        sources: m
            .sources
            .iter()
            .filter(|s| !drop.contains(&s.ssrc))
            .cloned()
            .collect(),
        groups: m
            .groups
            .iter()
            .filter(|g| g.semantics != "SIM" && !g.ssrcs.iter().any(|s| drop.contains(s)))
            .cloned()
            .collect(),
    }
}

fn validate_groups(m: &MediaSources) -> Result<(), SourceError> {
    for g in &m.groups {
        if g.semantics == "FID" && g.ssrcs.len() != 2 {
            return Err(SourceError::FidSize(g.ssrcs.len()));
        }
        let distinct: HashSet<u32> = g.ssrcs.iter().copied().collect();
        if g.ssrcs.is_empty() || distinct.len() != g.ssrcs.len() {
            return Err(SourceError::BadGroup(
                g.semantics.chars().take(16).collect(),
            ));
        }
        if let Some(s) = g.ssrcs.iter().find(|s| !m.contains(**s)) {
            return Err(SourceError::GroupUnknownSsrc(*s));
        }
    }
    Ok(())
}

/// Owner, names, msids and video types, with the SSRCs one group ties together (a simulcast
/// layer set and its RTX) treated as one track.
fn normalize(m: &mut MediaSources, endpoint: &str, is_video: bool) {
    let n = m.sources.len();
    // Union-find over source indices, joined by group membership.
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for g in &m.groups {
        let idx: Vec<usize> = g
            .ssrcs
            .iter()
            .filter_map(|s| m.sources.iter().position(|o| o.ssrc == *s))
            .collect();
        for w in idx.windows(2) {
            let (a, b) = (root(&mut parent, w[0]), root(&mut parent, w[1]));
            if a != b {
                parent[b.max(a)] = a.min(b);
            }
        }
    }
    // Tracks in order of their first source.
    let mut tracks: Vec<Vec<usize>> = Vec::new();
    let mut track_of_root: Vec<Option<usize>> = vec![None; n];
    for i in 0..n {
        let r = root(&mut parent, i);
        match track_of_root[r] {
            Some(t) => tracks[t].push(i),
            None => {
                track_of_root[r] = Some(tracks.len());
                tracks.push(vec![i]);
            }
        }
    }
    let (letter, word) = if is_video {
        ('v', "video")
    } else {
        ('a', "audio")
    };
    // A name must say whose source it is: one another endpoint's prefix is dropped (and
    // synthesized again below) so a client cannot pose as another.
    let prefix = format!("{endpoint}-");
    for s in &mut m.sources {
        if s.name.as_ref().is_some_and(|n| !n.starts_with(&prefix)) {
            s.name = None;
        }
    }
    let mut names: HashSet<String> = m.sources.iter().filter_map(|s| s.name.clone()).collect();
    for (t, members) in tracks.iter().enumerate() {
        let first = |f: fn(&Source) -> Option<&String>| {
            members.iter().find_map(|i| f(&m.sources[*i]).cloned())
        };
        let name = first(|s| s.name.as_ref()).unwrap_or_else(|| {
            let mut k = 0;
            loop {
                let candidate = format!("{endpoint}-{letter}{k}");
                if !names.contains(&candidate) {
                    break candidate;
                }
                k += 1;
            }
        });
        names.insert(name.clone());
        let fallback_stream = format!("{endpoint}-{word}-{}", t + 1);
        let msid = match first(|s| s.msid.as_ref()) {
            Some(msid) => fix_msid(&msid, &fallback_stream),
            None => format!("{fallback_stream} {fallback_stream}"),
        };
        let video_type = if is_video {
            first(|s| s.video_type.as_ref())
        } else {
            None
        };
        for i in members {
            let s = &mut m.sources[*i];
            s.owner = Some(endpoint.to_owned());
            if s.name.is_none() {
                s.name = Some(name.clone());
            }
            s.msid = Some(match &s.msid {
                Some(own) => fix_msid(own, &fallback_stream),
                None => msid.clone(),
            });
            if !is_video {
                s.video_type = None;
            } else if s.video_type.is_none() {
                s.video_type.clone_from(&video_type);
            }
        }
    }
}

/// Replace a missing or placeholder stream id (`mixedmslabel`, `default`, `-`).
fn fix_msid(msid: &str, fallback_stream: &str) -> String {
    let mut parts = msid.split_whitespace();
    let stream = parts.next().unwrap_or("");
    let track = parts.next().unwrap_or(fallback_stream);
    if stream.is_empty() || matches!(stream, "mixedmslabel" | "default" | "-") {
        format!("{fallback_stream} {track}")
    } else {
        format!("{stream} {track}")
    }
}
