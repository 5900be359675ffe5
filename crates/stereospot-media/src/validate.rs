//! Validation: is this upload something StereoSpot can convert, and if not, why (in words a user
//! can act on, with a stable code)?

use std::path::Path;
use std::time::Duration;

use crate::config::Media;
use crate::error::{MediaError, Result};
use crate::packets::PacketScan;
use crate::probe::{MediaInfo, Rational, VideoStream};
use crate::process::{StdoutMode, run};

/// How much of the video to decode while validating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeCheck {
    /// Do not decode (the packet scan still catches truncation).
    Skip,
    /// Decode the first stretch of the video (default: 10 seconds), leniently, as a player
    /// would: concealed decoding errors pass, a stream with no decodable frame fails. Catches
    /// files whose video cannot be decoded at all, for a few seconds of CPU.
    Head(Duration),
    /// Decode everything, strictly: the first decoding error anywhere fails the file. Catches
    /// damage anywhere, at the cost of a full decode (minutes for a long film).
    Full,
}

impl Default for DecodeCheck {
    fn default() -> Self {
        DecodeCheck::Head(Duration::from_secs(10))
    }
}

/// Options of [`Media::validate_with`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidateOptions {
    /// How much to decode.
    pub decode_check: DecodeCheck,
}

/// A validated input: what ffprobe says, refined by the packet scan.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Probe result with `video.frame_count`, `video.variable_frame_rate` and `duration` taken
    /// from the packet scan.
    pub info: MediaInfo,
    /// Every packet of the video stream.
    pub scan: PacketScan,
}

impl Validated {
    /// The video stream (validation guarantees there is one).
    pub fn video(&self) -> Result<&VideoStream> {
        self.info
            .video
            .as_ref()
            .ok_or(MediaError::NoVideoStream { has_audio: false })
    }
}

impl Media {
    /// Checks a file with the default options; see [`Media::validate_with`].
    pub async fn validate(&self, path: &Path) -> Result<MediaInfo> {
        Ok(self
            .validate_with(path, &ValidateOptions::default())
            .await?
            .info)
    }

    /// Checks that a file is a video StereoSpot can convert: not empty, a media file in an
    /// accepted container, not a playlist or script, with a video stream ffmpeg can decode, within
    /// the configured limits, and complete (not truncated). Returns the probe refined by a packet
    /// scan. Errors carry stable codes ([`MediaError::code`]).
    pub async fn validate_with(&self, path: &Path, opts: &ValidateOptions) -> Result<Validated> {
        let mut info = self.probe(path).await?;
        let Some(video) = info.video.clone() else {
            return Err(MediaError::NoVideoStream {
                has_audio: !info.audio.is_empty(),
            });
        };
        check_stream(&video)?;
        if video.pix_fmt.is_none() {
            // ffprobe finds the picture format by decoding the first frames.
            return Err(if self.can_decode(&video.codec).await? {
                MediaError::Corrupt {
                    detail: "the first frames of the video cannot be decoded".into(),
                }
            } else {
                MediaError::UnsupportedCodec {
                    codec: video.codec.clone(),
                }
            });
        }
        let limits = &self.config().limits;
        let (w, h) = video.display_size();
        if w.max(h) > limits.max_long_side || w.min(h) > limits.max_short_side {
            return Err(MediaError::TooLargeResolution {
                width: w,
                height: h,
                max_long: limits.max_long_side,
                max_short: limits.max_short_side,
            });
        }
        if let Some(d) = info.best_duration() {
            check_duration(d, limits.max_duration)?;
        }
        if video.hdr().is_some() && !self.has_zscale().await? {
            return Err(MediaError::UnsupportedPixelFormat {
                pix_fmt: video.pix_fmt.clone().unwrap_or_else(|| "unknown".into()),
                reason: Some(
                    "HDR video needs the zscale filter to be tone-mapped, and this ffmpeg has none"
                        .into(),
                ),
            });
        }

        let file_size = info.size_bytes.unwrap_or(0).max(
            std::fs::metadata(path)
                .map_err(|e| MediaError::io(format!("reading metadata of {}", path.display()), e))?
                .len(),
        );
        let time_base = video.time_base.unwrap_or(Rational::new(1, 90_000));
        let scan_budget = info.best_duration().unwrap_or(limits.max_duration);
        let scan = self
            .scan_packets(path, video.index, time_base, scan_budget)
            .await?;
        scan.check_integrity(video.frame_count, file_size)?;

        let scanned_duration = scan.duration();
        if let Some(d) = scanned_duration {
            check_duration(d, limits.max_duration)?;
        }
        let fps = match scanned_duration {
            Some(d) if d > Duration::ZERO && scan.frame_count() > 1 => {
                scan.frame_count() as f64 / d.as_secs_f64()
            }
            _ => video
                .output_frame_rate()
                .map(Rational::as_f64)
                .unwrap_or(0.0),
        };
        if !(fps > 0.0 && fps <= limits.max_frame_rate) && scan.frame_count() > 1 {
            return Err(MediaError::UnsupportedFrameRate {
                fps,
                max: limits.max_frame_rate,
            });
        }

        let media_duration = scanned_duration
            .or(info.best_duration())
            .unwrap_or_default();
        self.decode_check(path, &video, opts.decode_check, media_duration)
            .await?;

        if let Some(v) = info.video.as_mut() {
            v.frame_count = Some(scan.frame_count());
            v.variable_frame_rate = scan.is_variable_frame_rate();
            if v.duration.is_none() {
                v.duration = scanned_duration;
            }
        }
        if info.duration.is_none() {
            info.duration = scanned_duration;
        }
        tracing::info!(
            path = %path.display(),
            container = %info.container,
            codec = %video.codec,
            width = video.width,
            height = video.height,
            frames = scan.frame_count(),
            vfr = scan.is_variable_frame_rate(),
            "validated"
        );
        Ok(Validated { info, scan })
    }

    async fn decode_check(
        &self,
        path: &Path,
        video: &VideoStream,
        check: DecodeCheck,
        media_duration: Duration,
    ) -> Result<()> {
        match check {
            DecodeCheck::Skip => Ok(()),
            DecodeCheck::Head(d) => {
                // Lenient, like a player: decoding errors that the decoder conceals are fine
                // (a recording that starts mid-GOP still plays); no decodable frame is not.
                let mut inv = self.ffmpeg(self.config().timeouts.for_encode(d.min(media_duration)));
                self.untrusted_input(&mut inv, path)?;
                inv.args(["-map", &format!("0:{}", video.index)]);
                inv.args(["-t", &format!("{:.3}", d.as_secs_f64())]);
                inv.args(["-f", "null", "-progress", "pipe:1", "-nostats", "-"]);
                let fin = run(&inv, StdoutMode::Collect { limit: 1 << 20 }).await?;
                let frames = String::from_utf8_lossy(&fin.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("frame="))
                    .filter_map(|v| v.trim().parse::<u64>().ok())
                    .next_back()
                    .unwrap_or(0);
                if fin.status.success() && frames > 0 {
                    Ok(())
                } else {
                    Err(MediaError::Corrupt {
                        detail: format!(
                            "no frame of the video can be decoded ({})",
                            fin.stderr.last_line().unwrap_or("decoder error")
                        ),
                    })
                }
            }
            DecodeCheck::Full => {
                // Strict: the first decoding error anywhere fails the file.
                let mut inv = self.ffmpeg(self.config().timeouts.for_encode(media_duration));
                inv.arg("-xerror");
                self.untrusted_input(&mut inv, path)?;
                inv.args(["-map", &format!("0:{}", video.index), "-f", "null", "-"]);
                let fin = run(&inv, StdoutMode::Ignore).await?;
                if fin.status.success() {
                    Ok(())
                } else {
                    Err(MediaError::Corrupt {
                        detail: format!(
                            "the video cannot be decoded ({})",
                            fin.stderr.last_line().unwrap_or("decoder error")
                        ),
                    })
                }
            }
        }
    }
}

fn check_stream(video: &VideoStream) -> Result<()> {
    if video.codec == "unknown" || video.codec == "none" {
        return Err(MediaError::UnsupportedCodec {
            codec: video.codec.clone(),
        });
    }
    if video.width == 0 || video.height == 0 {
        return Err(MediaError::Corrupt {
            detail: "the video stream has no picture size".into(),
        });
    }
    if video.bit_depth.is_some_and(|d| d > 16) {
        return Err(MediaError::UnsupportedPixelFormat {
            pix_fmt: video.pix_fmt.clone().unwrap_or_default(),
            reason: Some("more than 16 bits per component".into()),
        });
    }
    Ok(())
}

fn check_duration(d: Duration, max: Duration) -> Result<()> {
    if d > max {
        Err(MediaError::TooLong { duration: d, max })
    } else {
        Ok(())
    }
}
