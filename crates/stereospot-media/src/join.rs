//! Joining: concatenate converted segments (concat demuxer, stream copy) and mux the source's
//! first audio track once, so the audio is continuous across segment joins and in sync.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;

use crate::config::{Media, file_url};
use crate::error::{MediaError, Result, Tool};
use crate::probe::{AudioStream, MediaInfo, Rotation};
use crate::process::{StdoutMode, run, temp_dir};

/// Audio codecs MP4 carries as they are; anything else is re-encoded to AAC.
const MP4_AUDIO_CODECS: &[&str] = &["aac", "mp3", "ac3", "eac3", "alac"];

/// Options of [`Media::join`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinOptions {
    /// The source whose first audio track is muxed into the output (none: video only).
    pub audio_from: Option<PathBuf>,
    /// Overrides the time limit (default: scaled to the total duration, as a stream copy).
    pub timeout: Option<Duration>,
}

/// How the audio was carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioHandling {
    /// The source had no audio (or none was asked for).
    None,
    /// Copied as it was (codec name).
    Copied(String),
    /// Re-encoded to AAC from this codec.
    ReencodedToAac(String),
}

/// The joined file.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The output MP4.
    pub path: PathBuf,
    /// Frames in the output (= the sum over segments).
    pub frame_count: u64,
    /// Output duration as ffprobe reports it.
    pub duration: Option<Duration>,
    /// What happened to the audio.
    pub audio: AudioHandling,
}

/// Writes the ffconcat list: only names we chose (`00000.mp4`, ...), relative to the list, so the
/// demuxer's `-safe 1` mode accepts them and nothing else can be named.
pub(crate) fn concat_list(count: usize) -> String {
    let mut s = String::from("ffconcat version 1.0\n");
    for i in 0..count {
        s.push_str(&format!("file {i:05}.mp4\n"));
    }
    s
}

impl Media {
    /// Concatenates `segments` (in order) into `output` (`+faststart` MP4), with the first audio
    /// track of `opts.audio_from` muxed once over the whole length. The output appears only when
    /// complete; temp files are removed on every path.
    pub async fn join(
        &self,
        segments: &[PathBuf],
        output: &Path,
        opts: &JoinOptions,
    ) -> Result<Joined> {
        if segments.is_empty() {
            return Err(MediaError::InvalidArgument("no segments to join".into()));
        }
        // Every segment must be a video with the same codec configuration, or a stream copy
        // would produce a file that does not decode.
        let checked = self.check_segments(segments).await?;
        let (frames, total, rotation) = (checked.frames, checked.total, checked.rotation);

        let audio_source = match &opts.audio_from {
            Some(src) => {
                let info = self.probe(src).await?;
                info.audio.first().cloned().map(|a| (src.clone(), info, a))
            }
            None => None,
        };

        let work = temp_dir(&self.config().temp_root, "join")?;
        for (i, seg) in segments.iter().enumerate() {
            let abs = std::path::absolute(seg)
                .map_err(|e| MediaError::io(format!("resolving {}", seg.display()), e))?;
            let link = work.path().join(format!("{i:05}.mp4"));
            link_file(&abs, &link)
                .map_err(|e| MediaError::io(format!("linking {}", seg.display()), e))?;
        }
        let list = work.path().join("list.ffconcat");
        std::fs::write(&list, concat_list(segments.len()))
            .map_err(|e| MediaError::io(format!("writing {}", list.display()), e))?;
        let partial = work.path().join("joined.mp4");

        let timeout = opts
            .timeout
            .unwrap_or_else(|| self.config().timeouts.for_copy(total));
        let mut inv = self.ffmpeg(timeout);
        inv.args(["-f", "concat", "-safe", "1"]);
        inv.args(["-protocol_whitelist", "file,pipe"]);
        let mut formats = vec!["concat".to_string()];
        formats.extend(self.config().allowed_demuxers.iter().cloned());
        inv.arg("-format_whitelist").arg(formats.join(","));
        inv.arg("-i").arg(file_url(&list)?);

        let audio = match &audio_source {
            Some((src, info, a)) => {
                let offset = audio_offset(info);
                if offset != 0.0 {
                    inv.args(["-itsoffset", &format!("{offset:.6}")]);
                }
                self.untrusted_input(&mut inv, src)?;
                inv.args(["-map", "0:v:0", "-map", &format!("1:{}", a.index)]);
                if MP4_AUDIO_CODECS.contains(&a.codec.as_str()) {
                    inv.args(["-c:a", "copy"]);
                    AudioHandling::Copied(a.codec.clone())
                } else {
                    inv.args(["-c:a", "aac", "-b:a", &aac_bitrate(a)]);
                    AudioHandling::ReencodedToAac(a.codec.clone())
                }
            }
            None => {
                inv.args(["-map", "0:v:0"]);
                AudioHandling::None
            }
        };
        inv.args(["-c:v", "copy", "-map_metadata", "-1", "-map_chapters", "-1"]);
        if rotation != Rotation::None {
            inv.args([
                "-metadata:s:v:0",
                &format!("rotate={}", rotation.display_matrix_degrees()),
            ]);
        }
        inv.args(["-movflags", "+faststart", "-f", "mp4"]);
        inv.arg(file_url(&partial)?);
        run(&inv, StdoutMode::Ignore).await?.check(Tool::Ffmpeg)?;

        let (out_info, out_frames) = self.probe_counting(&partial, total).await?;
        if out_frames != frames {
            return Err(MediaError::Internal(format!(
                "joined file has {out_frames} frames, the segments have {frames}"
            )));
        }
        let duration = out_info.best_duration();
        if let Some(dir) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| MediaError::io(format!("creating {}", dir.display()), e))?;
        }
        std::fs::rename(&partial, output)
            .or_else(|_| std::fs::copy(&partial, output).map(|_| ()))
            .map_err(|e| MediaError::io(format!("moving the output to {}", output.display()), e))?;
        tracing::info!(output = %output.display(), segments = segments.len(), frames, ?audio, "joined");
        Ok(Joined {
            path: output.to_path_buf(),
            frame_count: frames,
            duration,
            audio,
        })
    }
}

struct CheckedSegments {
    frames: u64,
    total: Duration,
    rotation: Rotation,
}

fn unusable(i: usize, seg: &Path) -> impl FnOnce(MediaError) -> MediaError + '_ {
    move |e| match e {
        MediaError::Io { .. } | MediaError::Timeout { .. } | MediaError::ToolMissing { .. } => e,
        other => MediaError::InvalidArgument(format!(
            "segment {i} ({}) is not usable: {other}",
            seg.display()
        )),
    }
}

impl Media {
    /// Checks that the segments can be joined by stream copy, counting their frames.
    ///
    /// Fast path, for MP4 segments (what the chunker and the frame writer produce): the sample
    /// tables are read in process and every segment's sample description (codec, size, decoder
    /// configuration) must be byte-identical to the first one's; only the first segment is
    /// probed. Otherwise each segment is probed with ffprobe.
    async fn check_segments(&self, segments: &[PathBuf]) -> Result<CheckedSegments> {
        let tracks: Vec<Option<crate::mp4::VideoTrack>> = segments
            .iter()
            .map(|s| crate::mp4::video_track(s).ok().flatten())
            .collect();
        if let Some(Some(t0)) = tracks.first()
            && tracks.iter().all(Option::is_some)
        {
            let info = self
                .probe(&segments[0])
                .await
                .map_err(unusable(0, &segments[0]))?;
            let Some(v) = info.video.as_ref() else {
                return Err(MediaError::InvalidArgument("segment 0 has no video".into()));
            };
            let mut frames = 0;
            let mut total = 0.0;
            let config = t0.codec_config();
            for (i, t) in tracks.iter().flatten().enumerate() {
                if t.codec_config() != config {
                    return Err(MediaError::InvalidArgument(format!(
                        "segment {i} ({}) is encoded differently from segment 0 ({}): segments \
                         joined by stream copy must share one codec configuration",
                        t.describe(),
                        t0.describe()
                    )));
                }
                frames += t.samples;
                total += t.duration.unwrap_or(0.0);
            }
            return Ok(CheckedSegments {
                frames,
                total: Duration::from_secs_f64(total),
                rotation: v.rotation,
            });
        }

        // One ffprobe per segment (probe + packet count), several at once, in order.
        let probed: Vec<Result<(MediaInfo, u64)>> = futures::stream::iter(segments.iter())
            .map(|seg| self.probe_counting(seg, self.config().limits.max_duration))
            .buffered(crate::chunk::parallelism())
            .collect()
            .await;
        let mut first: Option<crate::probe::VideoStream> = None;
        let mut frames = 0u64;
        let mut total = Duration::ZERO;
        for (i, (seg, probed)) in segments.iter().zip(probed).enumerate() {
            let (info, count) = probed.map_err(unusable(i, seg))?;
            let Some(v) = info.video.as_ref() else {
                return Err(MediaError::InvalidArgument(format!(
                    "segment {i} ({}) has no video",
                    seg.display()
                )));
            };
            match &first {
                None => first = Some(v.clone()),
                Some(f) => {
                    let same = (f.codec.as_str(), f.width, f.height, f.pix_fmt.as_deref())
                        == (v.codec.as_str(), v.width, v.height, v.pix_fmt.as_deref());
                    if !same {
                        return Err(MediaError::InvalidArgument(format!(
                            "segment {i} is {} {}x{} {}, segment 0 is {} {}x{} {}",
                            v.codec,
                            v.width,
                            v.height,
                            v.pix_fmt.as_deref().unwrap_or("?"),
                            f.codec,
                            f.width,
                            f.height,
                            f.pix_fmt.as_deref().unwrap_or("?")
                        )));
                    }
                }
            }
            total += info.best_duration().unwrap_or_default();
            frames += count;
        }
        Ok(CheckedSegments {
            frames,
            total,
            rotation: first.map(|v| v.rotation).unwrap_or(Rotation::None),
        })
    }
}

/// Seconds to shift the audio source by so its audio keeps its distance to the source's video:
/// ffmpeg normalises the source by its container start, the joined video starts at the source
/// video's first frame.
fn audio_offset(info: &MediaInfo) -> f64 {
    match (
        info.start_time,
        info.video.as_ref().and_then(|v| v.start_time),
    ) {
        (Some(container), Some(video)) => container - video,
        _ => 0.0,
    }
}

#[cfg(unix)]
fn link_file(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn link_file(target: &Path, link: &Path) -> std::io::Result<()> {
    std::fs::copy(target, link).map(|_| ())
}

fn aac_bitrate(a: &AudioStream) -> String {
    let per_channel = 96;
    format!("{}k", per_channel * a.channels.unwrap_or(2).clamp(1, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_list_names_only_our_files() {
        assert_eq!(
            concat_list(2),
            "ffconcat version 1.0\nfile 00000.mp4\nfile 00001.mp4\n"
        );
    }

    #[test]
    fn audio_is_shifted_by_the_video_start() {
        let json = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":2,
            "height":2,"pix_fmt":"yuv420p","start_time":"0.52"},
            {"index":1,"codec_type":"audio","codec_name":"flac","start_time":"0.0","channels":1}],
            "format":{"format_name":"matroska,webm","start_time":"0.0"}}"#;
        let info = MediaInfo::from_ffprobe_json(json).expect("parses");
        assert!((audio_offset(&info) + 0.52).abs() < 1e-9);
        assert_eq!(aac_bitrate(&info.audio[0]), "96k");
    }
}
