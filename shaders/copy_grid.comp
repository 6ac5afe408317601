#version 450
// vkdoctor: target-env=vulkan1.0
//
// Memory bandwidth with a grid-stride loop: a fixed grid (a few waves of the device) walks the
// whole buffer with uvec4 accesses, four independent loads in flight per invocation so that
// enough bytes are outstanding to cover DRAM latency.

layout(local_size_x = 256, local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uvec4 dst[]; };

layout(push_constant) uniform Push { uint n4; } pc;  // uvec4 count

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint i = gl_GlobalInvocationID.x;
    // n4 < 2^28, stride < 2^31: i + 3 * stride cannot wrap for the sizes the host allows.
    for (; i + 3u * stride < pc.n4; i += 4u * stride) {
        uvec4 v0 = src[i];
        uvec4 v1 = src[i + stride];
        uvec4 v2 = src[i + 2u * stride];
        uvec4 v3 = src[i + 3u * stride];
        dst[i] = v0;
        dst[i + stride] = v1;
        dst[i + 2u * stride] = v2;
        dst[i + 3u * stride] = v3;
    }
    for (; i < pc.n4; i += stride) {
        dst[i] = src[i];
    }
}
