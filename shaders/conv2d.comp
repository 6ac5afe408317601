#version 450
// vkdoctor: target-env=vulkan1.0
//
// 2-D convolution as a network layer computes it: a batch of NHWC float32 images with CIN
// channels, a (2R+1)x(2R+1) filter bank to COUT channels (weights [ky][kx][ci][co]), stride 1,
// zero padding R, output NHWC the size of the input.  Cross-correlation, as numpy and cuDNN
// compute it.
//
// Implicit GEMM: the output is the M x COUT product (M = batch * H * W pixels) of the virtual
// M x K im2col matrix (K = (2R+1)^2 * CIN, k = (ky * TAPS + kx) * CIN + ci) and the K x COUT
// weights, tiled like sgemm.comp (BM x BN tile per workgroup, TM x TN register tile per
// invocation, vec4 shared-memory reads spaced so neighbours read neighbours).  Image rows are
// gathered straight from the NHWC input: since CIN % BK == 0 a BK-wide k-slice lies inside one
// filter tap, so each A-tile row is BK contiguous channels of one shifted pixel (or zeros at the
// border).  The pixel of each load is decomposed once, outside the k loop.
//
// Shared memory is double-buffered (one barrier per k-tile): on an NVIDIA H200 (driver 580) it
// measured a few percent above the single-buffered scheme of sgemm.comp for these short K.
//
// The host guarantees: WG == (BM/TM)*(BN/TN), TM, TN, BK, PAD and CIN multiples of 4,
// CIN % BK == 0, COUT % BN == 0.  M needs no alignment: rows past M load zeros and store
// nothing.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 256, local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 128u;
layout(constant_id = 2) const uint BN = 128u;
layout(constant_id = 3) const uint BK = 8u;
layout(constant_id = 4) const uint TM = 8u;
layout(constant_id = 5) const uint TN = 8u;
layout(constant_id = 6) const uint R = 1u;

const uint TAPS = 2u * R + 1u;
const uint WG = gl_WorkGroupSize.x;
const uint GM = TM / 4u;
const uint GN = TN / 4u;
const uint SM = BM / GM;
const uint SN = BN / GN;
layout(constant_id = 7) const uint PAD = 4u;  // floats of padding per k-row of As
const uint AS = BM + PAD;
const uint A_VEC4 = BM * BK / 4u;
const uint B_VEC4 = BK * BN / 4u;
const uint A_LOADS = (A_VEC4 + WG - 1u) / WG;
const uint B_LOADS = (B_VEC4 + WG - 1u) / WG;
const uint AT = BK * AS / 4u;
const uint BT = BK * BN / 4u;

layout(std430, binding = 0) readonly buffer Image { vec4 img[]; };     // NHWC
layout(std430, binding = 1) readonly buffer Weights { vec4 wts[]; };  // [ky][kx][ci][co]
layout(std430, binding = 2) writeonly buffer Out { vec4 outp[]; };    // NHWC

layout(push_constant) uniform Push { uint M; uint H; uint W; uint CIN; uint COUT; } pc;

shared vec4 As[2u * AT];
shared vec4 Bs[2u * BT];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint tcol = tid % (BN / TN);
    uint trow = tid / (BN / TN);
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    uint C4 = pc.CIN / 4u;
    uint N4 = pc.COUT / 4u;
    uint K = TAPS * TAPS * pc.CIN;

    // Each A load of this invocation always covers the same output pixel: decompose it once.
    int py[A_LOADS];
    int px[A_LOADS];
    uint pm[A_LOADS];
    [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
        uint m = row0 + (tid + l * WG) / (BK / 4u);
        pm[l] = m;
        uint hw = m % (pc.H * pc.W);
        py[l] = int(hw / pc.W);
        px[l] = int(hw % pc.W);
    }

    vec4 acc[TM * GN];
    [[unroll]] for (uint i = 0u; i < TM * GN; ++i) acc[i] = vec4(0.0);
    vec4 ra[A_LOADS];
    vec4 rb[B_LOADS];

    uint buf = 0u;
    for (uint k0 = 0u; k0 <= K; k0 += BK) {
        // Stage k0 (global -> registers) while the tile before it is multiplied.
        bool more = k0 < K;
        if (more) {
            uint tap = k0 / pc.CIN;
            int dy = int(tap / TAPS) - int(R);
            int dx = int(tap % TAPS) - int(R);
            uint ci4 = (k0 % pc.CIN) / 4u;
            [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
                uint idx = tid + l * WG;
                int y = py[l] + dy;
                int x = px[l] + dx;
                bool ok = (A_VEC4 % WG == 0u || idx < A_VEC4) && pm[l] < pc.M && y >= 0 &&
                          x >= 0 && y < int(pc.H) && x < int(pc.W);
                uint src = uint(int(pm[l]) + dy * int(pc.W) + dx) * C4 + ci4 + idx % (BK / 4u);
                ra[l] = ok ? img[src] : vec4(0.0);
            }
            [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
                uint idx = tid + l * WG;
                if (B_VEC4 % WG == 0u || idx < B_VEC4) rb[l] = wts[(k0 + idx / (BN / 4u)) * N4 + col0 / 4u + idx % (BN / 4u)];
            }
        }
        if (k0 > 0u) {
            uint ab = buf * AT;
            uint bb = buf * BT;
            [[unroll]] for (uint k = 0u; k < BK; ++k) {
                vec4 a[GM];
                vec4 b[GN];
                [[unroll]] for (uint g = 0u; g < GM; ++g) a[g] = As[ab + (k * AS + g * SM + trow * 4u) / 4u];
                [[unroll]] for (uint g = 0u; g < GN; ++g) b[g] = Bs[bb + (k * BN + g * SN + tcol * 4u) / 4u];
                [[unroll]] for (uint gm = 0u; gm < GM; ++gm) {
                    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                        [[unroll]] for (uint gn = 0u; gn < GN; ++gn) {
                            uint o = (gm * 4u + i) * GN + gn;
                            acc[o] = fma(vec4(a[gm][i]), b[gn], acc[o]);
                        }
                    }
                }
            }
            buf ^= 1u;
        }
        if (more) {
            uint ab = buf * AT;
            uint bb = buf * BT;
            [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
                uint idx = tid + l * WG;
                if (A_VEC4 % WG == 0u || idx < A_VEC4) {
                    uint r = idx / (BK / 4u);
                    uint c = (idx % (BK / 4u)) * 4u;
                    As[ab + ((c + 0u) * AS + r) / 4u][r % 4u] = ra[l].x;
                    As[ab + ((c + 1u) * AS + r) / 4u][r % 4u] = ra[l].y;
                    As[ab + ((c + 2u) * AS + r) / 4u][r % 4u] = ra[l].z;
                    As[ab + ((c + 3u) * AS + r) / 4u][r % 4u] = ra[l].w;
                }
            }
            [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
                uint idx = tid + l * WG;
                if (B_VEC4 % WG == 0u || idx < B_VEC4) Bs[bb + idx] = rb[l];
            }
        }
        barrier();
    }

    [[unroll]] for (uint gm = 0u; gm < GM; ++gm) {
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint row = row0 + gm * SM + trow * 4u + i;
            if (row < pc.M) {
                [[unroll]] for (uint gn = 0u; gn < GN; ++gn) {
                    outp[row * N4 + (col0 + gn * SN + tcol * 4u) / 4u] = acc[(gm * 4u + i) * GN + gn];
                }
            }
        }
    }
}
