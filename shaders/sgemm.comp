#version 450
// vkdoctor: target-env=vulkan1.0
//
// SGEMM, C = A * B, row-major float32, M x K times K x N.
//
// Shared-memory tiles of BM x BK (A) and BK x BN (B); each invocation accumulates a TM x TN block
// of C in registers (register tiling), so every value loaded from shared memory feeds TM or TN
// FMAs.  The next tiles are prefetched into registers while the current ones are multiplied.
// A thread's TN columns are TN/4 vec4 groups spaced BN/(TN/4) apart (likewise for rows), so
// neighbouring threads read neighbouring vec4s from shared memory: no bank conflicts.  As is
// stored k-major with a PAD-float pad per row (4 by default), which spreads the transposing stores
// over banks while keeping vec4 alignment; PAD 0 trades those conflicts (a few stores per tile)
// for room, so BK = 32 tiles of 128 x 256 fit a 48 KiB shared memory.
//
// Why no shared-memory double buffering: on an NVIDIA H200 (driver 580) a double-buffered twin
// of this shader (one barrier per tile) measured 36-41 TFLOP/s against 43 for this one at the
// same 8192^3 size; the register prefetch already hides the global loads, and a bigger BK (more
// FMAs per barrier) bought more than a second buffer.  Tried again with the layout below (one
// barrier per tile, next tile stored after the FMAs): 28-30 against 46.
//
// The thread layout (constant 7, WR): 0 numbers the TM x TN blocks row by row, so a subgroup
// of 32 covers 32/(BN/TN) block rows; WR > 0 makes each group of 32 invocations (a subgroup on
// NVIDIA) cover a WR x 32/WR rectangle of blocks.  With 4 x 8 the As reads of a subgroup hit
// 4 neighbouring vec4s and the Bs reads 8 (64 and 128 bytes: one shared-memory wavefront each)
// instead of 2 and 16 (two wavefronts for Bs).  On an NVIDIA H200 (driver 580), 8192^3,
// 128x128x16 tiles of 8x8: 38.0 TFLOP/s row by row, 45.9 with 4 x 8, 45.8 with 8 x 4.
// Workgroup order (constant 8, GROUP_M): 0 walks the grid row by row; G > 0 walks G row tiles
// down each column tile before moving right (Triton's GROUP_M), for L2 reuse of B; on the
// H200 GROUP_M 8 measured 46.0 against 45.9-46.0 in grid order, a gain of at most 0.2 %.
//
// All tile sizes are specialization constants so they can be tuned per device.  The host
// guarantees: WG == (BM/TM)*(BN/TN), TM and TN multiples of 4, BK and PAD multiples of 4,
// M % BM == 0, N % BN == 0, K % BK == 0; with WR > 0 also 32 % WR == 0, (BM/TM) % WR == 0
// and (BN/TN) % (32/WR) == 0, which make the layout a bijection of invocations onto blocks.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 256, local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 128u;
layout(constant_id = 2) const uint BN = 128u;
layout(constant_id = 3) const uint BK = 16u;
layout(constant_id = 4) const uint TM = 8u;
layout(constant_id = 5) const uint TN = 8u;
layout(constant_id = 6) const uint PAD = 4u;  // floats of padding per k-row of As
layout(constant_id = 7) const uint WR = 0u;  // block rows per 32 invocations; 0: row by row
layout(constant_id = 8) const uint GROUP_M = 0u;  // row tiles per column sweep; 0: grid order

const uint WG = gl_WorkGroupSize.x;
const uint GM = TM / 4u;  // vec4 row groups per thread
const uint GN = TN / 4u;  // vec4 column groups per thread
const uint SM = BM / GM;  // spacing between a thread's row groups
const uint SN = BN / GN;  // spacing between a thread's column groups
const uint TC = BN / TN;  // invocations per row of blocks
const uint AS = BM + PAD;  // padded k-row of the transposed A tile
const uint A_VEC4 = BM * BK / 4u;
const uint B_VEC4 = BK * BN / 4u;
const uint A_LOADS = (A_VEC4 + WG - 1u) / WG;
const uint B_LOADS = (B_VEC4 + WG - 1u) / WG;

layout(std430, binding = 0) readonly buffer MatA { vec4 A[]; };
layout(std430, binding = 1) readonly buffer MatB { vec4 B[]; };
layout(std430, binding = 2) writeonly buffer MatC { vec4 C[]; };

layout(push_constant) uniform Push {
    uint M;
    uint N;
    uint K;
} pc;

shared vec4 As[BK * AS / 4u];  // As[k][m]
shared vec4 Bs[BK * BN / 4u];  // Bs[k][n]

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint tcol;
    uint trow;
    if (WR == 0u) {
        tcol = tid % TC;
        trow = tid / TC;
    } else {
        const uint WC = 32u / WR;
        uint warp = tid / 32u;
        uint lane = tid % 32u;
        trow = (warp / (TC / WC)) * WR + lane / WC;
        tcol = (warp % (TC / WC)) * WC + lane % WC;
    }
    uint tile_m = gl_WorkGroupID.y;
    uint tile_n = gl_WorkGroupID.x;
    if (GROUP_M != 0u) {
        uint pid = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
        uint in_group = GROUP_M * gl_NumWorkGroups.x;
        uint first = (pid / in_group) * GROUP_M;
        uint size = min(gl_NumWorkGroups.y - first, GROUP_M);
        tile_m = first + (pid % in_group) % size;
        tile_n = (pid % in_group) / size;
    }
    uint row0 = tile_m * BM;
    uint col0 = tile_n * BN;
    uint K4 = pc.K / 4u;
    uint N4 = pc.N / 4u;

    vec4 acc[TM * GN];
    [[unroll]] for (uint i = 0u; i < TM * GN; ++i) {
        acc[i] = vec4(0.0);
    }

    vec4 ra[A_LOADS];
    vec4 rb[B_LOADS];
    [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
        uint idx = tid + l * WG;
        if (idx < A_VEC4) {
            ra[l] = A[(row0 + idx / (BK / 4u)) * K4 + idx % (BK / 4u)];
        }
    }
    [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
        uint idx = tid + l * WG;
        if (idx < B_VEC4) {
            rb[l] = B[(idx / (BN / 4u)) * N4 + col0 / 4u + idx % (BN / 4u)];
        }
    }

    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
            uint idx = tid + l * WG;
            if (idx < A_VEC4) {
                uint r = idx / (BK / 4u);
                uint c = (idx % (BK / 4u)) * 4u;
                As[((c + 0u) * AS + r) / 4u][r % 4u] = ra[l].x;
                As[((c + 1u) * AS + r) / 4u][r % 4u] = ra[l].y;
                As[((c + 2u) * AS + r) / 4u][r % 4u] = ra[l].z;
                As[((c + 3u) * AS + r) / 4u][r % 4u] = ra[l].w;
            }
        }
        [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
            uint idx = tid + l * WG;
            if (idx < B_VEC4) {
                Bs[idx] = rb[l];
            }
        }
        barrier();

        // Prefetch the next tiles; their latency hides behind the FMAs below.
        uint k1 = k0 + BK;
        if (k1 < pc.K) {
            [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
                uint idx = tid + l * WG;
                if (idx < A_VEC4) {
                    ra[l] = A[(row0 + idx / (BK / 4u)) * K4 + k1 / 4u + idx % (BK / 4u)];
                }
            }
            [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
                uint idx = tid + l * WG;
                if (idx < B_VEC4) {
                    rb[l] = B[(k1 + idx / (BN / 4u)) * N4 + col0 / 4u + idx % (BN / 4u)];
                }
            }
        }

        [[unroll]] for (uint k = 0u; k < BK; ++k) {
            vec4 a[GM];
            vec4 b[GN];
            [[unroll]] for (uint g = 0u; g < GM; ++g) {
                a[g] = As[(k * AS + g * SM + trow * 4u) / 4u];
            }
            [[unroll]] for (uint g = 0u; g < GN; ++g) {
                b[g] = Bs[(k * BN + g * SN + tcol * 4u) / 4u];
            }
            [[unroll]] for (uint gm = 0u; gm < GM; ++gm) {
                [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                    [[unroll]] for (uint gn = 0u; gn < GN; ++gn) {
                        uint o = (gm * 4u + i) * GN + gn;
                        acc[o] = fma(vec4(a[gm][i]), b[gn], acc[o]);
                    }
                }
            }
        }
        barrier();
    }

    [[unroll]] for (uint gm = 0u; gm < GM; ++gm) {
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint row = row0 + gm * SM + trow * 4u + i;
            [[unroll]] for (uint gn = 0u; gn < GN; ++gn) {
                C[row * N4 + (col0 + gn * SN + tcol * 4u) / 4u] = acc[(gm * 4u + i) * GN + gn];
            }
        }
    }
}
