//! Plain image buffers beside [`stereospot_media::RgbFrame`].

/// A single-channel float map, row-major, `width * height` values.
///
/// As a model's output it is relative inverse depth (near = large, arbitrary scale and shift);
/// after [`crate::stabilize::DepthNormalizer`] it is normalised to `0..=1` (1 = nearest).
#[derive(Clone, PartialEq)]
pub struct DepthMap {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Values, row-major.
    pub data: Vec<f32>,
}

impl std::fmt::Debug for DepthMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepthMap")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl DepthMap {
    /// A map of zeros.
    pub fn new(width: u32, height: u32) -> Self {
        DepthMap {
            width,
            height,
            data: vec![0.0; width as usize * height as usize],
        }
    }

    /// Wraps values; `None` when their number does not match the size.
    pub fn from_vec(width: u32, height: u32, data: Vec<f32>) -> Option<Self> {
        (data.len() == width as usize * height as usize).then_some(DepthMap {
            width,
            height,
            data,
        })
    }

    /// The value at `(x, y)`.
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.data[y as usize * self.width as usize + x as usize]
    }

    /// Smallest and largest finite values (`None` when there are none).
    pub fn min_max(&self) -> Option<(f32, f32)> {
        let mut it = self.data.iter().copied().filter(|v| v.is_finite());
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }
}
