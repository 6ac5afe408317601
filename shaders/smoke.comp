#version 450
// vkdoctor: target-env=vulkan1.0
//
// The `dispatch` probe's smoke shader.  Every operation is exact in 32-bit arithmetic, so the
// result must match numpy bit for bit on any conformant device:
//   * uint multiply/add/xor wrap modulo 2^32 exactly like numpy's uint32;
//   * the float path converts values below 2^24 (exact), multiplies by a power of two (exact) and
//     adds an integer below 2^8 (exact below 2^24), so neither FMA contraction nor rounding mode
//     can change a bit.
// It reads every push-constant member, so a driver or cache that reuses stale push constants
// (RUN-04) produces a detectably different result on the second run.

// The default workgroup size is 1 on purpose: the host specialises it, and a driver that ignored
// specialization constants would leave most elements unwritten instead of passing silently.
layout(local_size_x = 1, local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer InA { uint a[]; };
layout(std430, binding = 1) readonly buffer InB { uint b[]; };
layout(std430, binding = 2) writeonly buffer OutU { uint out_u[]; };
layout(std430, binding = 3) writeonly buffer OutF { float out_f[]; };

layout(push_constant) uniform Push {
    uint n;       // elements to write; the tail past n must stay untouched
    uint mul;
    uint add;
    float scale;  // a power of two
} pc;

void main() {
    // 2-D grid so that large n never exceeds maxComputeWorkGroupCount[0].
    uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint i = group * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= pc.n) {
        return;
    }
    uint x = a[i];
    uint y = b[i];
    out_u[i] = (x * pc.mul + y) ^ (i + pc.add);
    out_f[i] = float(x & 0xFFFFu) * pc.scale + float(y & 0xFFu);
}
