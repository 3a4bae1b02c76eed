//! Image preprocessing as big_vision evaluates CLIPPO: `resize(size)` (TensorFlow bilinear,
//! half-pixel centres, no antialias, clipped and cast back to uint8 by truncation), then
//! `value_range(-1, 1)`; NHWC.

use image::RgbImage;

/// big_vision's `value_range(-1, 1)` of one uint8 value: `-1 + (x / 255) * 2` in f32.
pub fn value_range(x: u8) -> f32 {
    -1.0 + (f32::from(x) / 255.0) * 2.0
}

/// Source sample positions of TensorFlow's half-pixel bilinear resize along one axis:
/// `(lower, upper, lerp)` per output index (`tensorflow/core/kernels/image/resize_bilinear_op.cc`).
fn interpolation_weights(out_size: usize, in_size: usize) -> Vec<(usize, usize, f32)> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|i| {
            let fin = (i as f32 + 0.5) * scale - 0.5;
            let fl = fin.floor();
            let lower = (fl.max(0.0) as usize).min(in_size - 1);
            let upper = (fin.ceil().max(0.0) as usize).min(in_size - 1);
            (lower, upper, fin - fl)
        })
        .collect()
}

/// `tf.image.resize(img, (height, width), "bilinear", antialias=False)` as float32, HWC.
pub fn tf_resize_bilinear_f32(img: &RgbImage, width: usize, height: usize) -> Vec<f32> {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0f32; width * height * 3];
    if iw == 0 || ih == 0 {
        return out;
    }
    let xs = interpolation_weights(width, iw);
    let ys = interpolation_weights(height, ih);
    let src = img.as_raw();
    let px = |y: usize, x: usize, c: usize| f32::from(src[(y * iw + x) * 3 + c]);
    for (oy, &(y0, y1, ly)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, lx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let (tl, tr) = (px(y0, x0, c), px(y0, x1, c));
                let (bl, br) = (px(y1, x0, c), px(y1, x1, c));
                let top = tl + (tr - tl) * lx;
                let bottom = bl + (br - bl) * lx;
                out[(oy * width + ox) * 3 + c] = top + (bottom - top) * ly;
            }
        }
    }
    out
}

/// big_vision's `resize(size)` op on a uint8 image: TF bilinear, then clipped to `[0, 255]`
/// and truncated back to uint8.
pub fn resize_tf_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let f = tf_resize_bilinear_f32(img, width as usize, height as usize);
    let bytes = f.into_iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
    RgbImage::from_raw(width, height, bytes).unwrap_or_else(|| RgbImage::new(width, height))
}

/// `decode | resize(size) | value_range(-1, 1)`: `size x size x 3` f32 values (HWC), the
/// model input of one image.
pub fn preprocess_eval(img: &RgbImage, size: u32) -> Vec<f32> {
    let resized;
    let img = if img.width() == size && img.height() == size {
        img
    } else {
        resized = resize_tf_bilinear(img, size, size);
        &resized
    };
    img.as_raw().iter().map(|&v| value_range(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_range_maps_the_ends_and_127_is_not_zero() {
        assert_eq!(value_range(0), -1.0);
        assert_eq!(value_range(255), 1.0);
        assert_eq!(value_range(127), -0.003_921_568_4);
        for x in 0..=255u8 {
            assert_eq!(value_range(x), f32::from(x) / 127.5 - 1.0);
        }
    }

    #[test]
    fn same_size_resize_is_the_identity() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 70, 9]));
        assert_eq!(resize_tf_bilinear(&img, 5, 3), img);
    }

    #[test]
    fn upscaling_by_two_uses_half_pixel_centres() {
        // A 2-px ramp 0, 100 resized to 4 px: positions -0.25, 0.25, 0.75, 1.25 ->
        // 0 (clamped), 25, 75, 100.
        let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 100, 100, 100]).unwrap();
        let out = tf_resize_bilinear_f32(&img, 4, 1);
        let row: Vec<f32> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(row, vec![0.0, 25.0, 75.0, 100.0]);
        // Truncation: 2 px of 0, 1 -> 4 px gives 0.25 and 0.75, both cast to 0.
        let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 1, 1, 1]).unwrap();
        let out = resize_tf_bilinear(&img, 4, 1);
        assert_eq!(out.as_raw()[3], 0);
        assert_eq!(out.as_raw()[6], 0);
    }
}
