#version 450
// vkdoctor: target-env=vulkan1.3
// vkdoctor: min-glslang=14
//
// HGEMM on cooperative matrices (VK_KHR_cooperative_matrix): C = A * B with A (M x K) and
// B (K x N) row-major float16, C row-major float32, FP32 accumulation.
//
// A workgroup of 4 subgroups computes a BM x BN = 128 x 128 tile of C; each subgroup a 64 x 64
// quarter of it as 4 x 4 accumulators of 16 x 16.  Per BK = 32 step the workgroup stages the A
// and B tiles in shared memory (uvec4: 8 halves per element, so no 16-bit storage feature is
// needed; coopMatLoad takes element offsets and strides in uvec4 units), then each subgroup
// loads its A and B fragments once per 16-wide k slice and feeds 16 multiply-adds.  The next
// tiles are prefetched into registers while the current ones are multiplied.
//
// The host guarantees: subgroup size 32 (so 128 invocations are 4 subgroups), the device lists
// a 16 x 16 x 16 float16 x float16 -> float32 subgroup-scope shape, M % 128 == 0,
// N % 128 == 0, K % BK == 0.

#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require

layout(local_size_x = 128) in;

const uint BM = 128u;
const uint BN = 128u;
layout(constant_id = 0) const uint BK = 32u;  // 32 or 64: k per shared-memory step
const uint T = 16u;            // the cooperative matrix shape, T x T x T
const uint WM = 64u;           // rows of C per subgroup
const uint WN = 64u;           // columns of C per subgroup
const uint FM = WM / T;        // 4 fragments down
const uint FN = WN / T;        // 4 fragments across
const uint PADV = 1u;          // uvec4 of padding per shared row (spreads banks)
const uint AS = BK / 8u + PADV;  // shared A row stride in uvec4 (BK halves + pad)
const uint BS = BN / 8u + PADV;  // shared B row stride in uvec4 (BN halves + pad)
const uint A_V = BM * BK / 8u;   // uvec4 per A tile (512)
const uint B_V = BK * BN / 8u;   // uvec4 per B tile (512)

layout(std430, binding = 0) readonly buffer MatA { uvec4 A[]; };
layout(std430, binding = 1) readonly buffer MatB { uvec4 B[]; };
layout(std430, binding = 2) writeonly buffer MatC { float C[]; };

layout(push_constant) uniform Push {
    uint M;
    uint N;
    uint K;
} pc;

shared uvec4 As[BM * AS];
shared uvec4 Bs[BK * BS];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID;
    uint wrow = (sg / 2u) * WM;  // the subgroup's quarter inside the tile
    uint wcol = (sg % 2u) * WN;
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    uint K8 = pc.K / 8u;
    uint N8 = pc.N / 8u;

    coopmat<float, gl_ScopeSubgroup, T, T, gl_MatrixUseAccumulator> acc[FM * FN];
    [[unroll]] for (uint i = 0u; i < FM * FN; ++i) {
        acc[i] = coopmat<float, gl_ScopeSubgroup, T, T, gl_MatrixUseAccumulator>(0.0);
    }

    const uint LOADS = A_V / 128u;  // 4 uvec4 of A and 4 of B per invocation per step
    uvec4 ra[LOADS];
    uvec4 rb[LOADS];
    [[unroll]] for (uint l = 0u; l < LOADS; ++l) {
        uint idx = tid + l * 128u;
        ra[l] = A[(row0 + idx / (BK / 8u)) * K8 + idx % (BK / 8u)];
        rb[l] = B[(idx / (BN / 8u)) * N8 + col0 / 8u + idx % (BN / 8u)];
    }

    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        [[unroll]] for (uint l = 0u; l < LOADS; ++l) {
            uint idx = tid + l * 128u;
            As[(idx / (BK / 8u)) * AS + idx % (BK / 8u)] = ra[l];
            Bs[(idx / (BN / 8u)) * BS + idx % (BN / 8u)] = rb[l];
        }
        barrier();
        uint k1 = k0 + BK;
        if (k1 < pc.K) {  // prefetch the next tiles while this one is multiplied
            [[unroll]] for (uint l = 0u; l < LOADS; ++l) {
                uint idx = tid + l * 128u;
                ra[l] = A[(row0 + idx / (BK / 8u)) * K8 + k1 / 8u + idx % (BK / 8u)];
                rb[l] = B[(k1 + idx / (BN / 8u)) * N8 + col0 / 8u + idx % (BN / 8u)];
            }
        }
        [[unroll]] for (uint kk = 0u; kk < BK; kk += T) {
            coopmat<float16_t, gl_ScopeSubgroup, T, T, gl_MatrixUseA> fa[FM];
            coopmat<float16_t, gl_ScopeSubgroup, T, T, gl_MatrixUseB> fb[FN];
            [[unroll]] for (uint i = 0u; i < FM; ++i) {
                coopMatLoad(fa[i], As, (wrow + i * T) * AS + kk / 8u, AS,
                            gl_CooperativeMatrixLayoutRowMajor);
            }
            [[unroll]] for (uint j = 0u; j < FN; ++j) {
                coopMatLoad(fb[j], Bs, kk * BS + (wcol + j * T) / 8u, BS,
                            gl_CooperativeMatrixLayoutRowMajor);
            }
            [[unroll]] for (uint i = 0u; i < FM; ++i) {
                [[unroll]] for (uint j = 0u; j < FN; ++j) {
                    acc[i * FN + j] = coopMatMulAdd(fa[i], fb[j], acc[i * FN + j]);
                }
            }
        }
        barrier();
    }

    [[unroll]] for (uint i = 0u; i < FM; ++i) {
        [[unroll]] for (uint j = 0u; j < FN; ++j) {
            uint r = row0 + wrow + i * T;
            uint c = col0 + wcol + j * T;
            coopMatStore(acc[i * FN + j], C, r * pc.N + c, pc.N,
                         gl_CooperativeMatrixLayoutRowMajor);
        }
    }
}
