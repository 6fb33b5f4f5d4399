// Frame <-> tensor conversion on the GPU, compiled at run time with NVRTC (see src/cuda.rs).
//
// Each kernel mirrors the CPU code in src/convert.rs operation for operation, and is compiled
// with --fmad=false, so that both produce the same bits: the GPU path can be checked against
// the CPU path exactly, not within a tolerance. Frames are tightly packed (no row padding),
// planes back to back; `frame_bytes` separates the frames of a batch (blockIdx.y / z).

extern "C" {

__device__ __forceinline__ float clamp_unit(float v) { return fminf(fmaxf(v, -1.0f), 1.0f); }

// Round to nearest (ties to even) of a value within 0..=255, as round_u8 in convert.rs.
__device__ __forceinline__ unsigned char round_u8(float x) {
    return (unsigned char)(__float_as_uint(x + 12582912.0f) & 0xFFu);
}

__device__ __forceinline__ unsigned char to_u8(float v) {
    return round_u8(clamp_unit(v) * 127.5f + 127.5f);
}

// Packed RGB-family frame -> planar tensor, padded by replicating the last row and column.
// One thread per tensor pixel; blockIdx.y is the frame.
__global__ void packed_to_tensor(const unsigned char* src, long long frame_bytes, int w, int h,
                                 int bpp, int ro, int go, int bo, float scale, float* dst,
                                 int pw, int ph) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= pw * ph) return;
    int x = min(idx % pw, w - 1);
    int y = min(idx / pw, h - 1);
    const unsigned char* p = src + blockIdx.y * frame_bytes + ((long long)y * w + x) * bpp;
    long long plane = (long long)pw * ph;
    float* out = dst + blockIdx.y * 3 * plane;
    out[idx] = (float)p[ro] * scale - 1.0f;
    out[plane + idx] = (float)p[go] * scale - 1.0f;
    out[2 * plane + idx] = (float)p[bo] * scale - 1.0f;
}

// Vertically interpolated chroma sample k of luma row y (convert.rs: the scratch row).
__device__ __forceinline__ float chroma_v(const unsigned char* plane, int stride, int step,
                                          int k, int cy, int ny, float wa, float wb) {
    float a = (float)plane[cy * stride + k * step];
    float b = (float)plane[ny * stride + k * step];
    return wa * a + wb * b - 128.0f;
}

// Horizontal upsampling of one chroma row at pixel x (convert.rs: upsample_row).
__device__ __forceinline__ float chroma_at(const unsigned char* plane, int stride, int step,
                                           int n, int x, int cy, int ny, float wa, float wb,
                                           int bilinear) {
    int k = x >> 1;
    float s = chroma_v(plane, stride, step, k, cy, ny, wa, wb);
    if (!bilinear) return s;
    if ((x & 1) == 0) {
        if (k == 0) return s;
        return 0.75f * s + 0.25f * chroma_v(plane, stride, step, k - 1, cy, ny, wa, wb);
    }
    if (k == 0) {
        return 0.75f * s + 0.25f * chroma_v(plane, stride, step, min(1, n - 1), cy, ny, wa, wb);
    }
    if (k == n - 1) return s;
    return 0.75f * s + 0.25f * chroma_v(plane, stride, step, k + 1, cy, ny, wa, wb);
}

// I420 or NV12 (limited or full range: the coefficients say) -> planar tensor. One thread per tensor pixel.
__global__ void yuv420_to_tensor(const unsigned char* src, long long frame_bytes, int w, int h,
                                 int nv12, int bilinear, float y_scale, float y_offset, float rv,
                                 float gu, float gv, float bu, float* dst, int pw, int ph) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= pw * ph) return;
    int x = min(idx % pw, w - 1);
    int y = min(idx / pw, h - 1);
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    const unsigned char* f = src + blockIdx.y * frame_bytes;
    const unsigned char* luma = f;
    const unsigned char* up;
    const unsigned char* vp;
    int cstride, step;
    if (nv12) {
        up = f + (long long)w * h;
        vp = up + 1;
        cstride = 2 * cw;
        step = 2;
    } else {
        up = f + (long long)w * h;
        vp = up + (long long)cw * ch;
        cstride = cw;
        step = 1;
    }
    int cy = y / 2;
    int ny;
    float wa, wb;
    if (!bilinear) {
        ny = cy; wa = 1.0f; wb = 0.0f;
    } else if ((y & 1) == 0) {
        ny = max(cy - 1, 0); wa = 0.75f; wb = 0.25f;
    } else {
        ny = min(cy + 1, ch - 1); wa = 0.75f; wb = 0.25f;
    }
    float u = chroma_at(up, cstride, step, cw, x, cy, ny, wa, wb, bilinear);
    float v = chroma_at(vp, cstride, step, cw, x, cy, ny, wa, wb, bilinear);
    float l = (float)luma[(long long)y * w + x] * y_scale + y_offset;
    long long plane = (long long)pw * ph;
    float* out = dst + blockIdx.y * 3 * plane;
    out[idx] = clamp_unit(l + rv * v);
    out[plane + idx] = clamp_unit(l + gu * u + gv * v);
    out[2 * plane + idx] = clamp_unit(l + bu * u);
}

// Planar tensor -> packed RGB-family frame. One thread per frame pixel. The fourth byte (ao >= 0)
// comes from `alpha_src` (the input frames, same layout) when given, else 255.
__global__ void tensor_to_packed(const float* src, int pw, int ph, unsigned char* dst,
                                 const unsigned char* alpha_src, long long frame_bytes, int w,
                                 int h, int bpp, int ro, int go, int bo, int ao) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= w * h) return;
    int x = idx % w, y = idx / w;
    long long plane = (long long)pw * ph;
    const float* t = src + blockIdx.y * 3 * plane + (long long)y * pw + x;
    long long off = blockIdx.y * frame_bytes + (long long)idx * bpp;
    unsigned char* p = dst + off;
    p[ro] = to_u8(t[0]);
    p[go] = to_u8(t[plane]);
    p[bo] = to_u8(t[2 * plane]);
    if (ao >= 0) p[ao] = alpha_src ? alpha_src[off + ao] : 255;
}

// y_mid, y_gain: 125.5, 109.5 for limited range, 127.5, 127.5 for full range.
__device__ __forceinline__ unsigned char luma_of(const float* t, long long plane, float kr,
                                                 float kg, float kb, float y_mid, float y_gain) {
    float l = kr * clamp_unit(t[0]) + kg * clamp_unit(t[plane]) + kb * clamp_unit(t[2 * plane]);
    return round_u8(y_mid + y_gain * l);
}

// Planar tensor -> I420 or NV12. One thread per 2x2 block: its (up to) four luma samples and
// one chroma pair, averaging the pixels the block has (convert.rs: chroma_row).
__global__ void tensor_to_yuv420(const float* src, int pw, int ph, unsigned char* dst,
                                 long long frame_bytes, int w, int h, int nv12, float kr,
                                 float kg, float kb, float y_mid, float y_gain, float u0,
                                 float u1, float u2, float v0, float v1, float v2) {
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= cw * ch) return;
    int cx = idx % cw, cy = idx / cw;
    long long plane = (long long)pw * ph;
    const float* t = src + blockIdx.y * 3 * plane;
    unsigned char* f = dst + blockIdx.y * frame_bytes;
    int x0 = 2 * cx, x1 = 2 * cx + 1, y0 = 2 * cy, y1 = min(2 * cy + 1, h - 1);
    bool has_x1 = x1 < w;
    for (int yy = y0; yy <= min(2 * cy + 1, h - 1); ++yy) {
        f[(long long)yy * w + x0] = luma_of(t + (long long)yy * pw + x0, plane, kr, kg, kb, y_mid, y_gain);
        if (has_x1) f[(long long)yy * w + x1] = luma_of(t + (long long)yy * pw + x1, plane, kr, kg, kb, y_mid, y_gain);
    }
    float c[3];
    for (int i = 0; i < 3; ++i) {
        const float* a = t + i * plane + (long long)y0 * pw + x0;
        const float* b = t + i * plane + (long long)y1 * pw + x0;
        if (has_x1) {
            c[i] = 0.25f * (clamp_unit(a[0]) + clamp_unit(a[1]) + clamp_unit(b[0]) + clamp_unit(b[1]));
        } else {
            c[i] = 0.5f * (clamp_unit(a[0]) + clamp_unit(b[0]));
        }
    }
    // Full range reaches 128 + 127.5 for pure blue (U) and red (V): clip at 255.
    unsigned char u = round_u8(fminf(128.0f + u0 * c[0] + u1 * c[1] + u2 * c[2], 255.0f));
    unsigned char v = round_u8(fminf(128.0f + v0 * c[0] + v1 * c[1] + v2 * c[2], 255.0f));
    unsigned char* chroma = f + (long long)w * h;
    if (nv12) {
        chroma[(long long)cy * 2 * cw + 2 * cx] = u;
        chroma[(long long)cy * 2 * cw + 2 * cx + 1] = v;
    } else {
        chroma[(long long)cy * cw + cx] = u;
        chroma[(long long)cw * ch + (long long)cy * cw + cx] = v;
    }
}

}

// Sets flags[f] to 1 when frame f's tensor (per_frame floats) holds a NaN or an infinity
// (x - x is 0 only for finite x). One thread per value; flags are only ever set, so threads
// of one frame racing on its flag is harmless.
__global__ void flag_nonfinite(const float* t, long long per_frame, int* flags) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= per_frame) return;
    float v = t[(long long)blockIdx.y * per_frame + idx];
    if (!(v - v == 0.0f)) flags[blockIdx.y] = 1;
}
