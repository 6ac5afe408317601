#version 450
// vkdoctor: target-env=vulkan1.0
//
// Sum of 32-bit unsigned integers (wrapping modulo 2^32, so the result is exact and independent
// of summation order), one partial sum per workgroup; the host adds the partials.  This is the
// fallback for devices without subgroup arithmetic: a shared-memory tree.
// The workgroup size must be a power of two (the host guarantees it).

layout(local_size_x = 256, local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Partial { uint partial[]; };

layout(push_constant) uniform Push { uint n4; } pc;  // uvec4 count

shared uint sums[gl_WorkGroupSize.x];

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint i = gl_GlobalInvocationID.x;
    uint acc0 = 0u;
    uint acc1 = 0u;
    // Two loads in flight per iteration; separate accumulators keep them independent.
    for (; i + stride < pc.n4; i += 2u * stride) {
        uvec4 v0 = src[i];
        uvec4 v1 = src[i + stride];
        acc0 += (v0.x + v0.y) + (v0.z + v0.w);
        acc1 += (v1.x + v1.y) + (v1.z + v1.w);
    }
    if (i < pc.n4) {
        uvec4 v = src[i];
        acc0 += (v.x + v.y) + (v.z + v.w);
    }
    uint lid = gl_LocalInvocationID.x;
    sums[lid] = acc0 + acc1;
    barrier();
    for (uint half_ = gl_WorkGroupSize.x / 2u; half_ > 0u; half_ >>= 1u) {
        if (lid < half_) {
            sums[lid] += sums[lid + half_];
        }
        barrier();
    }
    if (lid == 0u) {
        partial[gl_WorkGroupID.x] = sums[0];
    }
}
