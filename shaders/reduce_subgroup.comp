#version 450
// vkdoctor: target-env=vulkan1.1
//
// Sum of 32-bit unsigned integers like reduce_shared, but each subgroup reduces in registers
// with subgroupAdd; only one value per subgroup goes through shared memory.  Needs subgroup
// BASIC and ARITHMETIC operations in the compute stage (the host checks before choosing it).
// Works for any subgroup size, including ones that vary between dispatches.

#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x = 256, local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Partial { uint partial[]; };

layout(push_constant) uniform Push { uint n4; } pc;  // uvec4 count

// One slot per subgroup; a subgroup has at least one invocation, so this always suffices.
shared uint sums[gl_WorkGroupSize.x];

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint i = gl_GlobalInvocationID.x;
    uint acc0 = 0u;
    uint acc1 = 0u;
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
    uint s = subgroupAdd(acc0 + acc1);
    if (subgroupElect()) {
        sums[gl_SubgroupID] = s;
    }
    barrier();
    if (gl_SubgroupID == 0u) {
        uint t = 0u;
        for (uint j = gl_SubgroupInvocationID; j < gl_NumSubgroups; j += gl_SubgroupSize) {
            t += sums[j];
        }
        t = subgroupAdd(t);
        if (subgroupElect()) {
            partial[gl_WorkGroupID.x] = t;
        }
    }
}
