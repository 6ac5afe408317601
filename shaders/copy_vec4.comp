#version 450
// vkdoctor: target-env=vulkan1.0
//
// Memory bandwidth with 128-bit accesses: one uvec4 per invocation, so each memory instruction
// moves 16 bytes (LDG.128/STG.128 on NVIDIA) and a quarter of the invocations do the same work.

layout(local_size_x = 256, local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uvec4 dst[]; };

layout(push_constant) uniform Push { uint n4; } pc;  // uvec4 count

void main() {
    uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint i = group * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i < pc.n4) {
        dst[i] = src[i];
    }
}
