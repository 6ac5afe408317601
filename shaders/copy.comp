#version 450
// vkdoctor: target-env=vulkan1.0
//
// Memory bandwidth, the plain way: one 32-bit word per invocation, one invocation per word.
// This is the pattern most application kernels start from; compare it with copy_vec4/copy_grid.
// Expect it well below them on big GPUs: on an H200 it runs at 2.3 TB/s at full clock where
// copy_vec4 reaches 4.3, since 4-byte accesses keep a quarter of the bytes in flight per warp.

layout(local_size_x = 256, local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform Push { uint n; } pc;

void main() {
    // 2-D grid: a buffer of 2^28 words needs more than 65535 workgroups in x.
    uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint i = group * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i < pc.n) {
        dst[i] = src[i];
    }
}
