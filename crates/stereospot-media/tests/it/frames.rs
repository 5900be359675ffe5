//! Frame reader and writer: every frame once, upright, even-sized, the YUV identical to what
//! plain ffmpeg decodes and the RGB within a level of ffmpeg's most accurate conversion; written
//! files play back with the same frames, colours, timing and duration.

use std::path::Path;
use std::time::Duration;

use stereospot_media::{
    AsyncFrameReader, ChromaSubsampling, EncodeOptions, FrameReader, FrameWriter, Hdr,
    OutputPixelFormat, Rational, ReadOptions, Resize, RgbFrame, YuvFormat, YuvFrame, YuvMatrix,
    YuvRange,
};

use crate::helpers::{
    Diff, Env, diff, ffmpeg_raw_frames, ffmpeg_rgb_frames, ffmpeg_rgb_reference, frame_times,
    psnr_rgb, streams, video,
};

/// The reader's RGB against ffmpeg's most accurate conversion of the same YUV: within a level
/// on average. Both interpolate centre-sited chroma, bilinearly here and bicubically there, so
/// they differ only next to sharp chroma edges, by up to a quarter of the edge's height (real
/// footage: 11-25 levels at the worst pixel; synthetic test patterns with saturated one-pixel
/// detail: 40-65, mostly bicubic's overshoot).
const REAL: u8 = 30;
const SYNTHETIC: u8 = 70;

fn assert_close(what: &str, ours: &[u8], reference: &[u8], max: u8) -> Diff {
    let d = diff(ours, reference);
    eprintln!("{what}: {d}");
    assert!(d.mean <= 1.0 && d.max <= max, "{what}: {d}");
    d
}

/// Reads every frame as planar YUV, returning the planes concatenated frame by frame (ffmpeg's
/// rawvideo layout) and the source description.
async fn read_all_yuv(
    env: &Env,
    path: &Path,
    opts: ReadOptions,
) -> (Vec<u8>, stereospot_media::FrameSource, u64) {
    let media = env.media.clone();
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut reader = FrameReader::open(&media, &path, &opts).expect("open reader");
        let source = reader.source().clone();
        let mut all = Vec::new();
        let mut frame = YuvFrame::default();
        let mut n = 0;
        while reader.read_yuv_into(&mut frame).expect("read frame") {
            assert_eq!(frame.index, n);
            assert_eq!(frame.format, source.yuv);
            for p in [&frame.y, &frame.u, &frame.v] {
                all.extend_from_slice(p);
            }
            n += 1;
        }
        (all, source, n)
    })
    .await
    .expect("join")
}

/// Reads every frame on a blocking thread (as the stereo engine does), returning the frames'
/// bytes concatenated and the source description.
async fn read_all(
    env: &Env,
    path: &Path,
    opts: ReadOptions,
) -> (Vec<u8>, stereospot_media::FrameSource, u64) {
    let media = env.media.clone();
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut reader = FrameReader::open(&media, &path, &opts).expect("open reader");
        let source = reader.source().clone();
        let mut all = Vec::new();
        let mut frame = RgbFrame::new(0, 0);
        let mut n = 0;
        while reader.read_into(&mut frame).expect("read frame") {
            assert_eq!(frame.index, n);
            assert_eq!((frame.width, frame.height), (source.width, source.height));
            all.extend_from_slice(&frame.data);
            n += 1;
        }
        assert_eq!(reader.frames_read(), n);
        (all, source, n)
    })
    .await
    .expect("join")
}

#[tokio::test]
async fn reader_matches_plain_ffmpeg_on_the_shared_videos() {
    let env = Env::new();
    for (name, frames, w, h, matrix, range) in [
        // Untagged SD: BT.601, as players assume.
        (
            "realshort.mp4",
            36,
            320,
            240,
            YuvMatrix::Bt601,
            YuvRange::Limited,
        ),
        // MJPEG, yuvj420p: full range, kept so.
        ("book.mkv", 109, 640, 480, YuvMatrix::Bt601, YuvRange::Full),
        // Tagged smpte170m.
        (
            "car-detection.mp4",
            377,
            768,
            432,
            YuvMatrix::Bt601,
            YuvRange::Limited,
        ),
        // Untagged 720p: BT.709, as players assume (ffmpeg's own default would be BT.601).
        (
            "cockatoo_yuv420.mp4",
            280,
            1280,
            720,
            YuvMatrix::Bt709,
            YuvRange::Limited,
        ),
    ] {
        let path = video(name);
        let (bytes, source, n) = read_all(&env, &path, ReadOptions::default()).await;
        assert_eq!(n, frames, "{name}");
        assert_eq!((source.width, source.height), (w, h), "{name}");
        assert_eq!(
            (source.yuv.matrix, source.yuv.range),
            (matrix, range),
            "{name}"
        );
        let reference = ffmpeg_rgb_reference(&path, None, source.yuv);
        assert_close(name, &bytes, &reference, REAL);

        // The YUV path hands over ffmpeg's decode unchanged (yuvj420p has yuv420p's layout).
        let (yuv, _, n) = read_all_yuv(&env, &path, ReadOptions::default()).await;
        assert_eq!(n, frames, "{name}");
        let native = if name == "book.mkv" {
            "yuvj420p"
        } else {
            "yuv420p"
        };
        assert!(
            yuv == ffmpeg_raw_frames(&path, None, native),
            "{name}: YUV differs from plain ffmpeg's decode"
        );
    }
    env.assert_clean();
}

#[tokio::test]
async fn rotated_input_comes_out_upright() {
    let env = Env::new();
    let plain = env.generate(
        "plain.mp4",
        &["testsrc=size=320x240:rate=25:duration=1"],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    for (name, rotate) in [("cw.mp4", "-90"), ("ccw.mp4", "90"), ("upside.mp4", "180")] {
        let rotated = env.path(name);
        env.ffmpeg(&[
            "-i",
            plain.to_str().expect("utf-8"),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &format!("rotate={rotate}"),
            rotated.to_str().expect("utf-8"),
        ]);
        let (bytes, source, n) = read_all(&env, &rotated, ReadOptions::default()).await;
        assert_eq!(n, 25);
        let expected_size = if rotate == "180" {
            (320, 240)
        } else {
            (240, 320)
        };
        assert_eq!((source.width, source.height), expected_size, "{name}");
        // Plain ffmpeg autorotates: that is what every player shows.
        let players = ffmpeg_rgb_reference(&rotated, None, source.yuv);
        assert_close(name, &bytes, &players, SYNTHETIC);
        let unrotated = ffmpeg_rgb_reference(&plain, None, source.yuv);
        assert!(
            diff(&bytes, &unrotated).mean > 10.0,
            "{name}: rotation ignored"
        );
    }
    env.assert_clean();
}

#[tokio::test]
async fn odd_sizes_are_cropped_to_even() {
    let env = Env::new();
    // VP9 keeps odd sizes in 4:2:0 (H.264 cannot), as screen recorders produce.
    let odd = env.generate(
        "odd.webm",
        &["testsrc=size=853x481:rate=25:duration=1"],
        &[
            "-c:v",
            "libvpx-vp9",
            "-pix_fmt",
            "yuv420p",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ],
    );
    let (bytes, source, n) = read_all(&env, &odd, ReadOptions::default()).await;
    assert_eq!((source.width, source.height, n), (852, 480, 25));
    let reference = ffmpeg_rgb_reference(&odd, Some("crop=852:480:0:0"), source.yuv);
    assert_close("853x481 cropped", &bytes, &reference, SYNTHETIC);
    env.assert_clean();
}

#[tokio::test]
async fn resize_options() {
    let env = Env::new();
    let path = video("car-detection.mp4");
    let (_, source, n) = read_all(
        &env,
        &path,
        ReadOptions {
            resize: Some(Resize::Fit {
                max_width: 384,
                max_height: 384,
            }),
            timeout: None,
        },
    )
    .await;
    assert_eq!((source.width, source.height, n), (384, 216, 377));
    let (_, source, _) = read_all(
        &env,
        &video("realshort.mp4"),
        ReadOptions {
            resize: Some(Resize::Exact {
                width: 518,
                height: 518,
            }),
            timeout: None,
        },
    )
    .await;
    assert_eq!((source.width, source.height), (518, 518));
}

#[tokio::test]
async fn variable_frame_rate_keeps_every_frame_and_the_duration() {
    let env = Env::new();
    // 30 fps for the first half of every second, 10 fps for the second half.
    let vfr = env.generate(
        "vfr.mp4",
        &["testsrc2=size=320x240:rate=30:duration=4,select='if(lt(mod(n\\,30)\\,15)\\,1\\,not(mod(n\\,3)))'"],
        &["-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast"],
    );
    let validated = env
        .media
        .validate_with(&vfr, &Default::default())
        .await
        .expect("valid");
    let v = validated.video().expect("video");
    assert!(v.variable_frame_rate, "the packet scan sees the VFR");
    assert_eq!(v.frame_count, Some(80));
    let src_duration = validated.scan.duration().expect("duration").as_secs_f64();

    let out = env.path("out.mp4");
    let media = env.media.clone();
    let (vfr2, out2) = (vfr.clone(), out.clone());
    let (read, written) = tokio::task::spawn_blocking(move || {
        let mut reader = FrameReader::open(&media, &vfr2, &ReadOptions::default()).expect("open");
        let src = reader.source().clone();
        assert_eq!(src.frame_rate, Rational::new(1200, 59), "average rate");
        let mut writer = FrameWriter::create(
            &media,
            &out2,
            src.width,
            src.height,
            src.frame_rate,
            &EncodeOptions {
                preset: "ultrafast".into(),
                ..EncodeOptions::default()
            },
        )
        .expect("writer");
        let mut n = 0;
        for frame in reader.by_ref() {
            writer.write_frame(&frame.expect("frame")).expect("write");
            n += 1;
        }
        (n, writer.finish().expect("finish"))
    })
    .await
    .expect("join");
    assert_eq!(
        read, 80,
        "every decoded frame exactly once: none duplicated, none dropped"
    );
    assert_eq!(written.frames, 80);
    let times = frame_times(&out);
    assert_eq!(times.len(), 80);
    let out_duration = streams(&out)[0].2;
    let one_frame = 1.0 / 20.34;
    assert!(
        (out_duration - src_duration).abs() <= one_frame,
        "duration {out_duration} vs source {src_duration}"
    );
    env.assert_clean();
}

#[tokio::test]
async fn writer_round_trip_quality_timing_and_faststart() {
    let env = Env::new();
    let src = video("realshort.mp4");
    let out = env.path("written.mp4");
    let (orig, source, n) = read_all(&env, &src, ReadOptions::default()).await;
    {
        let (media, out, orig) = (env.media.clone(), out.clone(), orig.clone());
        let rate = source.frame_rate;
        tokio::task::spawn_blocking(move || {
            let mut w =
                FrameWriter::create(&media, &out, 320, 240, rate, &EncodeOptions::default())
                    .expect("writer");
            for chunk in orig.chunks(320 * 240 * 3) {
                w.write(chunk).expect("write");
            }
            let done = w.finish().expect("finish");
            assert_eq!(done.frames, 36);
        })
        .await
        .expect("join");
    }
    let (back, back_source, back_n) = read_all(&env, &out, ReadOptions::default()).await;
    assert_eq!(back_n, n);
    assert_eq!(
        back_source.frame_rate,
        Rational::new(45000, 1499),
        "same rate"
    );
    let p = psnr_rgb(&orig, &back);
    assert!(p > 35.0, "CRF 18 round trip PSNR {p:.1} dB");
    // +faststart: the index (moov) comes before the media data (mdat).
    let bytes = std::fs::read(&out).expect("read");
    let moov = bytes.windows(4).position(|w| w == b"moov").expect("moov");
    let mdat = bytes.windows(4).position(|w| w == b"mdat").expect("mdat");
    assert!(moov < mdat, "moov at {moov}, mdat at {mdat}");
    // No partial file left beside the output.
    let names: Vec<_> = std::fs::read_dir(env.work.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("written.mp4")]);
    env.assert_clean();
}

#[tokio::test]
async fn writer_yuv444_and_argument_checks() {
    let env = Env::new();
    let out = env.path("444.mp4");
    let media = env.media.clone();
    let out2 = out.clone();
    tokio::task::spawn_blocking(move || {
        let opts = EncodeOptions {
            pix_fmt: OutputPixelFormat::Yuv444p,
            preset: "ultrafast".into(),
            ..EncodeOptions::default()
        };
        let mut w =
            FrameWriter::create(&media, &out2, 64, 48, Rational::new(25, 1), &opts).expect("w");
        let err = w.write(&[0u8; 10]).expect_err("wrong size");
        assert_eq!(err.code(), "invalid_argument");
        let mut f = RgbFrame::new(64, 48);
        for i in 0..10u8 {
            f.data.fill(i * 20);
            w.write_frame(&f).expect("write");
        }
        w.finish().expect("finish");

        let odd = FrameWriter::create(
            &media,
            &out2.with_file_name("odd.mp4"),
            63,
            48,
            Rational::new(25, 1),
            &EncodeOptions::default(),
        );
        assert_eq!(odd.err().map(|e| e.code()), Some("invalid_argument"));
    })
    .await
    .expect("join");
    let info = env.media.probe(&out).await.expect("probe");
    let v = info.video.expect("video");
    assert_eq!(v.pix_fmt.as_deref(), Some("yuv444p"));
    assert_eq!(v.frame_count, Some(10));
}

#[tokio::test]
async fn a_dropped_writer_leaves_nothing() {
    let env = Env::new();
    let out = env.path("never.mp4");
    let media = env.media.clone();
    let out2 = out.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = FrameWriter::create(
            &media,
            &out2,
            64,
            48,
            Rational::new(25, 1),
            &EncodeOptions::default(),
        )
        .expect("w");
        w.write_frame(&RgbFrame::new(64, 48)).expect("write");
        drop(w);
    })
    .await
    .expect("join");
    let left: Vec<_> = std::fs::read_dir(env.work.path()).expect("dir").collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn ten_bit_sdr_is_converted_and_hdr_is_tone_mapped() {
    let env = Env::new();
    let graph = "testsrc2=size=320x240:rate=25:duration=1";
    let eight = env.generate(
        "8bit.mp4",
        &[graph],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let ten = env.generate(
        "10bit.mp4",
        &[graph],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p10le",
        ],
    );
    let hdr = env.generate(
        "hdr.mp4",
        &[graph],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
        ],
    );
    let (a, sa, _) = read_all(&env, &eight, ReadOptions::default()).await;
    let (b, sb, _) = read_all(&env, &ten, ReadOptions::default()).await;
    assert_eq!(sb.info.video.as_ref().and_then(|v| v.bit_depth), Some(10));
    assert_eq!((sa.tone_mapped, sb.tone_mapped), (None, None));
    // Close to ffmpeg's own accurate conversion straight from 10 bits, and to the 8-bit twin.
    let reference = ffmpeg_rgb_reference(&ten, None, sb.yuv);
    assert_close("10-bit SDR", &b, &reference, SYNTHETIC);
    let p = psnr_rgb(&a, &b);
    assert!(p > 30.0, "10-bit SDR reads like its 8-bit twin: {p:.1} dB");

    let (c, sc, n) = read_all(&env, &hdr, ReadOptions::default()).await;
    assert_eq!(n, 25);
    assert_eq!(sc.tone_mapped, Some(Hdr::Pq));
    // Not the naive conversion (PQ code values shown as if SDR)...
    let naive = ffmpeg_rgb_frames(&hdr, None);
    assert!(psnr_rgb(&c, &naive) < 30.0, "HDR was not tone-mapped");
    // ...but the tone-mapping chain ffmpeg documents, whose BT.709 output the Rust conversion
    // turns into RGB like ffmpeg's scaler does.
    assert_eq!(
        (sc.yuv.matrix, sc.yuv.range),
        (YuvMatrix::Bt709, YuvRange::Limited)
    );
    let reference = ffmpeg_rgb_reference(&hdr, Some(&sc.filters), sc.yuv);
    assert_close("HDR tone-mapped", &c, &reference, SYNTHETIC);
    env.assert_clean();
}

#[tokio::test]
async fn a_reader_timeout_kills_ffmpeg() {
    let env = Env::new();
    let media = env.media.clone();
    let path = video("cockatoo_yuv420.mp4");
    let err = tokio::task::spawn_blocking(move || {
        let mut r = FrameReader::open(
            &media,
            &path,
            &ReadOptions {
                resize: None,
                // Decoding 280 frames of 720p takes far longer than this.
                timeout: Some(Duration::from_millis(100)),
            },
        )
        .expect("open");
        loop {
            match r.read_frame() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("read everything within the timeout"),
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("join");
    assert_eq!(err.code(), "timeout");
    env.assert_clean();
}

#[tokio::test]
async fn reader_and_writer_work_from_plain_threads() {
    // The stereo engine's shape: one thread decodes, a worker pool computes, one thread encodes.
    let env = Env::new();
    let media = env.media.clone();
    let src = video("realshort.mp4");
    let out = env.path("threads.mp4");
    let (tx, rx) = std::sync::mpsc::sync_channel::<RgbFrame>(4);
    let reader_media = media.clone();
    let reader = std::thread::spawn(move || {
        let r = FrameReader::open(&reader_media, &src, &ReadOptions::default()).expect("open");
        let mut n = 0u64;
        for f in r {
            tx.send(f.expect("frame")).expect("send");
            n += 1;
        }
        n
    });
    let out2 = out.clone();
    let writer = std::thread::spawn(move || {
        let mut w = FrameWriter::create(
            &media,
            &out2,
            320,
            240,
            Rational::new(45000, 1499),
            &EncodeOptions {
                preset: "ultrafast".into(),
                ..EncodeOptions::default()
            },
        )
        .expect("writer");
        for mut f in rx {
            // "Processing": invert the picture.
            f.data.iter_mut().for_each(|b| *b = 255 - *b);
            w.write_frame(&f).expect("write");
        }
        w.finish().expect("finish")
    });
    let n = reader.join().expect("reader thread");
    let written = writer.join().expect("writer thread");
    assert_eq!((n, written.frames), (36, 36));
    assert!((written.duration.as_secs_f64() - 36.0 * 1499.0 / 45000.0).abs() < 1e-6);
    assert_eq!(frame_times(&out).len(), 36);
}

#[tokio::test]
async fn writer_averages_chroma_without_seams() {
    // Anaglyph frames are full of one-pixel red/cyan detail. 4:2:0 must average each 2x2 block
    // (red + cyan = neutral chroma) everywhere: ffmpeg's fast BGR24 path does not (it leaves
    // rows of unaveraged chroma at slice boundaries), which is why the writer takes RGB24 only.
    let env = Env::new();
    let out = env.path("checker.mp4");
    let media = env.media.clone();
    let out2 = out.clone();
    tokio::task::spawn_blocking(move || {
        let (w, h) = (1920u32, 1080u32);
        let mut f = RgbFrame::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                let px = if (x + y) % 2 == 0 {
                    [255, 0, 0]
                } else {
                    [0, 255, 255]
                };
                f.data[i..i + 3].copy_from_slice(&px);
            }
        }
        let mut writer = FrameWriter::create(
            &media,
            &out2,
            w,
            h,
            Rational::new(25, 1),
            &EncodeOptions {
                crf: 0,
                preset: "ultrafast".into(),
                ..EncodeOptions::default()
            },
        )
        .expect("writer");
        writer.write_frame(&f).expect("write");
        writer.finish().expect("finish");
    })
    .await
    .expect("join");
    let raw = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(&out)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .expect("ffmpeg");
    assert!(raw.status.success());
    let (w, h) = (1920usize, 1080usize);
    let chroma = &raw.stdout[w * h..];
    let off = chroma
        .iter()
        .filter(|v| (i32::from(**v) - 128).abs() > 2)
        .count();
    assert_eq!(off, 0, "{off} chroma samples are not the 2x2 average");
}

/// Test pictures for the round trips: smooth gradients, and saturated colour blocks whose edges
/// fall on odd and even pixels.
fn test_picture(kind: &str, w: u32, h: u32) -> RgbFrame {
    let mut f = RgbFrame::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let px = match kind {
                "smooth" => {
                    let (fx, fy) = (f64::from(x) / f64::from(w), f64::from(y) / f64::from(h));
                    [
                        (255.0 * fx) as u8,
                        (255.0 * fy) as u8,
                        (128.0 + 100.0 * (6.0 * fx + 4.0 * fy).sin()) as u8,
                    ]
                }
                _ => {
                    const COLOURS: [[u8; 3]; 8] = [
                        [255, 0, 0],
                        [0, 255, 0],
                        [0, 0, 255],
                        [255, 255, 0],
                        [0, 255, 255],
                        [255, 0, 255],
                        [255, 255, 255],
                        [20, 20, 20],
                    ];
                    COLOURS[((x / 45 + y / 33 * 3) % 8) as usize]
                }
            };
            let i = ((y * w + x) * 3) as usize;
            f.data[i..i + 3].copy_from_slice(&px);
        }
    }
    f
}

/// ffmpeg's own RGB -> 4:2:0 -> RGB round trip, lossless in between, at its most accurate: the
/// yardstick for ours.
fn ffmpeg_round_trip(env: &Env, f: &RgbFrame) -> Vec<u8> {
    let raw = env.path("picture.rgb");
    std::fs::write(&raw, &f.data).expect("write");
    let mp4 = env.path("ffmpeg_lossless.mp4");
    let flags = "flags=bicubic+accurate_rnd+full_chroma_int";
    env.ffmpeg(&[
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        &format!("{}x{}", f.width, f.height),
        "-i",
        raw.to_str().expect("utf-8"),
        "-vf",
        &format!("scale=out_color_matrix=bt709:out_range=tv:{flags},format=yuv420p"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-qp",
        "0",
        mp4.to_str().expect("utf-8"),
    ]);
    ffmpeg_raw_frames(
        &mp4,
        Some(&format!(
            "scale=in_color_matrix=bt709:in_range=tv:{flags},format=rgb24"
        )),
        "rgb24",
    )
}

#[tokio::test]
async fn lossless_round_trips_stay_close_to_the_input() {
    // RGB -> writer (x264 lossless) -> reader -> RGB: only the colour conversion and 4:2:0
    // subsampling are left, and they must be at least as faithful as ffmpeg's own.
    let env = Env::new();
    for kind in ["smooth", "edges"] {
        let (w, h) = (640u32, 360u32);
        let picture = test_picture(kind, w, h);
        let out = env.path(&format!("{kind}.mp4"));
        {
            let (media, out, picture) = (env.media.clone(), out.clone(), picture.clone());
            tokio::task::spawn_blocking(move || {
                let opts = EncodeOptions {
                    crf: 0,
                    preset: "ultrafast".into(),
                    ..EncodeOptions::default()
                };
                let mut wr = FrameWriter::create(&media, &out, w, h, Rational::new(25, 1), &opts)
                    .expect("writer");
                wr.write_frame(&picture).expect("write");
                wr.finish().expect("finish");
            })
            .await
            .expect("join");
        }
        let (back, source, n) = read_all(&env, &out, ReadOptions::default()).await;
        assert_eq!(n, 1);
        assert_eq!(
            source.yuv,
            YuvFormat::bt709(ChromaSubsampling::Yuv420),
            "{kind}: the writer's tags are read back"
        );
        let ours = diff(&back, &picture.data);
        let theirs = diff(&ffmpeg_round_trip(&env, &picture), &picture.data);
        // Away from the colour edges (two pixels or more), 4:2:0 loses nothing.
        let is_edge = |x: u32, y: u32| {
            let block = |x: u32, y: u32| (x / 45, y / 33);
            let (x0, x1) = (x.saturating_sub(2), (x + 2).min(w - 1));
            let (y0, y1) = (y.saturating_sub(2), (y + 2).min(h - 1));
            block(x0, y0) != block(x1, y1)
        };
        let mut flat = 0u8;
        for y in 0..h {
            for x in 0..w {
                if kind == "smooth" || !is_edge(x, y) {
                    let i = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        flat = flat.max(back[i + c].abs_diff(picture.data[i + c]));
                    }
                }
            }
        }
        eprintln!(
            "{kind} round trip: ours {ours} (away from edges: max {flat}); ffmpeg's {theirs}"
        );
        assert!(flat <= 2, "{kind}: {flat} away from edges");
        match kind {
            "smooth" => assert!(ours.mean < 0.6 && ours.max <= 3, "{kind}: {ours}"),
            // Saturated colour edges every 33 to 45 pixels: what 4:2:0 cannot hold.
            _ => assert!(ours.mean < 5.0, "{kind}: {ours}"),
        }
        // About as faithful as ffmpeg's own round trip (bicubic: a little sharper at edges,
        // with overshoot; bilinear here: no ringing).
        assert!(
            ours.mean <= theirs.mean * 1.15 + 0.05,
            "{kind}: ours {ours}, ffmpeg's {theirs}"
        );
    }
    env.assert_clean();
}

/// ffprobe's colour fields of the first video stream, in this order: color_range, color_space,
/// color_transfer, color_primaries, chroma_location, pix_fmt.
fn colour_tags(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg(
            "stream=color_range,color_space,color_transfer,color_primaries,chroma_location,pix_fmt",
        )
        .args(["-of", "default=nw=1"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("?")
            .to_string()
    };
    [
        "color_range",
        "color_space",
        "color_transfer",
        "color_primaries",
        "chroma_location",
        "pix_fmt",
    ]
    .iter()
    .map(|k| field(k))
    .collect()
}

const PURE: [(&str, [u8; 3], [u8; 3]); 6] = [
    // name, RGB, BT.709 limited-range Y'CbCr (the standard's code values)
    ("red", [255, 0, 0], [63, 102, 240]),
    ("green", [0, 255, 0], [173, 42, 26]),
    ("blue", [0, 0, 255], [32, 240, 118]),
    ("grey", [128, 128, 128], [126, 128, 128]),
    ("white", [255, 255, 255], [235, 128, 128]),
    ("black", [0, 0, 0], [16, 128, 128]),
];

#[tokio::test]
async fn written_colours_decode_correctly_in_plain_ffmpeg() {
    let env = Env::new();
    for pix_fmt in [OutputPixelFormat::Yuv420p, OutputPixelFormat::Yuv444p] {
        let out = env.path("pure.mp4");
        let (w, h) = (64u32, 48u32);
        {
            let (media, out) = (env.media.clone(), out.clone());
            tokio::task::spawn_blocking(move || {
                let opts = EncodeOptions {
                    crf: 0,
                    preset: "ultrafast".into(),
                    pix_fmt,
                    ..EncodeOptions::default()
                };
                let mut wr = FrameWriter::create(&media, &out, w, h, Rational::new(25, 1), &opts)
                    .expect("writer");
                for (_, rgb, _) in PURE {
                    let mut f = RgbFrame::new(w, h);
                    f.data
                        .chunks_exact_mut(3)
                        .for_each(|p| p.copy_from_slice(&rgb));
                    wr.write_frame(&f).expect("write");
                }
                wr.finish().expect("finish");
            })
            .await
            .expect("join");
        }
        let name = if pix_fmt == OutputPixelFormat::Yuv420p {
            "yuv420p"
        } else {
            "yuv444p"
        };
        let mut tags = colour_tags(&out);
        if name == "yuv444p" {
            // Chroma siting means nothing without subsampling.
            tags[4] = "center".into();
        }
        assert_eq!(
            tags,
            ["tv", "bt709", "bt709", "bt709", "center", name],
            "{name}: stream tags"
        );
        // The code values are BT.709's, exactly.
        let yuv = ffmpeg_raw_frames(&out, None, name);
        let plane = (w * h) as usize;
        let chroma = if name == "yuv420p" { plane / 4 } else { plane };
        for (i, (colour, _, want)) in PURE.iter().enumerate() {
            let f = &yuv[i * (plane + 2 * chroma)..][..plane + 2 * chroma];
            let got = [f[0], f[plane], f[plane + chroma]];
            assert_eq!(got, *want, "{name} {colour}: Y'CbCr");
            assert!(
                f[..plane].iter().all(|&v| v == want[0]),
                "{name} {colour}: flat luma"
            );
        }
        // And plain ffmpeg, following the tags, shows the colours that were written.
        let rgb = ffmpeg_rgb_frames(&out, None);
        for (i, (colour, want, _)) in PURE.iter().enumerate() {
            let f = &rgb[i * (plane * 3)..][..plane * 3];
            for p in f.chunks_exact(3) {
                let d = p.iter().zip(want).map(|(a, b)| a.abs_diff(*b)).max();
                assert!(d <= Some(2), "{name} {colour}: ffmpeg shows {p:?}");
            }
        }
        std::fs::remove_file(&out).expect("rm");
    }
    env.assert_clean();
}

#[tokio::test]
async fn plain_ffmpeg_encodes_read_back_in_their_colours() {
    // Pure colours encoded by plain ffmpeg (lossless) with each matrix and range the reader has
    // to tell apart, tagged or not.
    let env = Env::new();
    let cases = [
        // size, ffmpeg's matrix, range, tags
        ("1280x720", "bt709", "tv", true),
        ("1280x720", "bt709", "tv", false),
        ("640x480", "bt601", "tv", true),
        ("640x480", "bt601", "tv", false),
        ("640x480", "bt601", "pc", true),
        ("1280x720", "bt709", "pc", true),
        ("1920x1080", "bt2020", "tv", true),
    ];
    for (size, matrix, range, tagged) in cases {
        // One frame of six vertical bars, encoded from raw RGB by ffmpeg's scaler.
        let (w, h): (u32, u32) = match size.split_once('x') {
            Some((w, h)) => (w.parse().expect("w"), h.parse().expect("h")),
            None => unreachable!(),
        };
        let (bars, bar) = pure_bars(w, h);
        let raw = env.path("bars.rgb");
        std::fs::write(&raw, &bars.data).expect("write");
        let out = env.path("plain.mp4");
        let mut args = vec![
            "-f".to_string(),
            "rawvideo".into(),
            "-pix_fmt".into(),
            "rgb24".into(),
            "-s".into(),
            size.into(),
            "-i".into(),
            raw.to_str().expect("utf-8").into(),
            "-vf".into(),
            format!("scale=out_color_matrix={matrix}:out_range={range},format=yuv420p"),
        ];
        args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"].map(String::from));
        if tagged {
            let space = match matrix {
                "bt601" => "smpte170m",
                "bt2020" => "bt2020nc",
                m => m,
            };
            args.extend(["-colorspace", space, "-color_range", range].map(String::from));
        }
        args.push(out.to_str().expect("utf-8").into());
        env.ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());

        let (rgb, source, n) = read_all(&env, &out, ReadOptions::default()).await;
        let what = format!("{size} {matrix} {range} tagged={tagged}");
        assert_eq!(n, 1, "{what}");
        assert_eq!(source.yuv.range.tag(), range, "{what}");
        assert_bars(&what, &rgb, w, h, bar);
        std::fs::remove_file(&out).expect("rm");
        std::fs::remove_file(&raw).expect("rm");
    }
    env.assert_clean();
}

/// Six vertical bars of the pure colours, and the width of one bar.
fn pure_bars(w: u32, h: u32) -> (RgbFrame, u32) {
    let bar = w / PURE.len() as u32;
    let mut bars = RgbFrame::new(w, h);
    for (i, p) in bars.data.chunks_exact_mut(3).enumerate() {
        let x = i as u32 % w;
        p.copy_from_slice(&PURE[((x / bar) as usize).min(PURE.len() - 1)].1);
    }
    (bars, bar)
}

/// The middle of each bar, on the middle row, is its colour within two levels.
fn assert_bars(what: &str, rgb: &[u8], w: u32, h: u32, bar: u32) {
    for (i, (colour, want, _)) in PURE.iter().enumerate() {
        let x = bar * i as u32 + bar / 2;
        let at = ((h / 2 * w + x) * 3) as usize;
        let got = &rgb[at..at + 3];
        let d = got.iter().zip(want).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(d <= Some(2), "{what} {colour}: read {got:?}, want {want:?}");
    }
}

#[tokio::test]
async fn rgb_sources_are_read_in_their_colours() {
    // Lossless RGB H.264 (libx264rgb, decoded as gbrp): ffmpeg converts to BT.709 limited 4:2:0,
    // which the reader knows.
    let env = Env::new();
    let (w, h) = (384u32, 96u32);
    let (bars, bar) = pure_bars(w, h);
    let raw = env.path("bars.rgb");
    std::fs::write(&raw, &bars.data).expect("write");
    let out = env.path("rgb.mkv");
    env.ffmpeg(&[
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        &format!("{w}x{h}"),
        "-i",
        raw.to_str().expect("utf-8"),
        "-c:v",
        "libx264rgb",
        "-preset",
        "ultrafast",
        "-qp",
        "0",
        out.to_str().expect("utf-8"),
    ]);
    let (rgb, source, n) = read_all(&env, &out, ReadOptions::default()).await;
    assert_eq!(n, 1);
    assert_eq!(
        source
            .info
            .video
            .as_ref()
            .and_then(|v| v.pix_fmt.as_deref()),
        Some("gbrp")
    );
    assert_eq!(source.yuv, YuvFormat::bt709(ChromaSubsampling::Yuv420));
    assert!(
        source.filters.contains("out_color_matrix=bt709"),
        "{}",
        source.filters
    );
    assert_bars("libx264rgb", &rgb, w, h, bar);
    env.assert_clean();
}

#[tokio::test]
async fn yuv_frames_pass_through_unchanged() {
    // Reader YUV -> writer YUV, lossless: the decoded output is the decoded input, bit for bit.
    let env = Env::new();
    let src = env.generate(
        "hd.mp4",
        &["testsrc2=size=1280x720:rate=25:duration=0.4"],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let out = env.path("passthrough.mp4");
    {
        let (media, src, out) = (env.media.clone(), src.clone(), out.clone());
        tokio::task::spawn_blocking(move || {
            let mut r = FrameReader::open(&media, &src, &ReadOptions::default()).expect("open");
            let s = r.source().clone();
            assert_eq!(s.yuv, YuvFormat::bt709(ChromaSubsampling::Yuv420));
            let opts = EncodeOptions {
                crf: 0,
                preset: "ultrafast".into(),
                ..EncodeOptions::default()
            };
            let mut w = FrameWriter::create(&media, &out, s.width, s.height, s.frame_rate, &opts)
                .expect("writer");
            assert_eq!(w.format(), Some(s.yuv));
            while let Some(f) = r.read_yuv_frame().expect("read") {
                w.write_yuv(&f).expect("write");
            }
            // A frame in another format is refused rather than mislabelled.
            let sd = YuvFrame::new(
                s.width,
                s.height,
                YuvFormat {
                    matrix: YuvMatrix::Bt601,
                    ..s.yuv
                },
            );
            assert_eq!(
                w.write_yuv(&sd).expect_err("BT.601").code(),
                "invalid_argument"
            );
            let small = YuvFrame::new(64, 48, s.yuv);
            assert_eq!(
                w.write_yuv(&small).expect_err("size").code(),
                "invalid_argument"
            );
            assert_eq!(w.finish().expect("finish").frames, 10);
        })
        .await
        .expect("join");
    }
    assert!(ffmpeg_raw_frames(&out, None, "yuv420p") == ffmpeg_raw_frames(&src, None, "yuv420p"));
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_reader_and_writer_convert_on_a_multi_threaded_runtime() {
    // The conversions run in block_in_place there; results as on the blocking adaptors.
    let env = Env::new();
    let src = video("realshort.mp4");
    let mut reader = AsyncFrameReader::open(&env.media, &src, &ReadOptions::default())
        .await
        .expect("open");
    let s = reader.source().clone();
    let out = env.path("async.mp4");
    let mut writer = stereospot_media::AsyncFrameWriter::create(
        &env.media,
        &out,
        s.width,
        s.height,
        s.frame_rate,
        &EncodeOptions {
            preset: "ultrafast".into(),
            ..EncodeOptions::default()
        },
    )
    .await
    .expect("writer");
    let mut all = Vec::new();
    while let Some(f) = reader.read_frame().await.expect("read") {
        all.extend_from_slice(&f.data);
        writer.write_frame(&f).await.expect("write");
    }
    assert_eq!(writer.finish().await.expect("finish").frames, 36);
    let (blocking, _, _) = read_all(&env, &src, ReadOptions::default()).await;
    assert!(all == blocking, "async and blocking readers agree");
    env.assert_clean();
}
