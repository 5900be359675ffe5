//! Frame reader and writer: every frame once, upright, even-sized, identical to what plain ffmpeg
//! decodes; written files play back with the same frames, timing and duration.

use std::path::Path;
use std::time::Duration;

use stereospot_media::{
    EncodeOptions, FrameReader, FrameWriter, Hdr, OutputPixelFormat, Rational, ReadOptions, Resize,
    RgbFrame,
};

use crate::helpers::{Env, ffmpeg_rgb_frames, frame_times, psnr_rgb, streams, video};

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
    for (name, frames, w, h) in [
        ("realshort.mp4", 36, 320, 240),
        ("book.mkv", 109, 640, 480),
        ("car-detection.mp4", 377, 768, 432),
    ] {
        let path = video(name);
        let (bytes, source, n) = read_all(&env, &path, ReadOptions::default()).await;
        assert_eq!(n, frames, "{name}");
        assert_eq!((source.width, source.height), (w, h), "{name}");
        assert!(
            bytes == ffmpeg_rgb_frames(&path, None),
            "{name}: frames differ from plain ffmpeg's decode"
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
        assert!(
            bytes == ffmpeg_rgb_frames(&rotated, None),
            "{name}: not the orientation players show"
        );
        assert!(
            bytes != ffmpeg_rgb_frames(&plain, None),
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
    assert!(bytes == ffmpeg_rgb_frames(&odd, Some("crop=852:480:0:0")));
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
    // Converted exactly as plain ffmpeg converts it, and close to its 8-bit twin (swscale's fast
    // 8-bit path rounds differently, hence not identical).
    assert!(b == ffmpeg_rgb_frames(&ten, None));
    let p = psnr_rgb(&a, &b);
    assert!(p > 30.0, "10-bit SDR reads like its 8-bit twin: {p:.1} dB");

    let (c, sc, n) = read_all(&env, &hdr, ReadOptions::default()).await;
    assert_eq!(n, 25);
    assert_eq!(sc.tone_mapped, Some(Hdr::Pq));
    // Not the naive conversion (PQ code values shown as if SDR)...
    let naive = ffmpeg_rgb_frames(&hdr, None);
    assert!(psnr_rgb(&c, &naive) < 30.0, "HDR was not tone-mapped");
    // ...but the tone-mapping chain ffmpeg documents.
    let reference = ffmpeg_rgb_frames(&hdr, Some(&sc.filters.replace(",format=rgb24", "")));
    assert!(c == reference);
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
