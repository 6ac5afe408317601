#version 450
// vkdoctor: target-env=vulkan1.0
//
// SAXPY, out of place: z = a*x + y with vec4 accesses.  Out of place so that repeated timing
// runs compute the same result (in place, every repetition would change y).  The host checks
// against float64 with a bound that holds whether or not the compiler fuses into an FMA.

layout(local_size_x = 256, local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { vec4 x[]; };
layout(std430, binding = 1) readonly buffer Y { vec4 y[]; };
layout(std430, binding = 2) writeonly buffer Z { vec4 z[]; };

layout(push_constant) uniform Push {
    uint n4;  // vec4 count
    float a;
} pc;

void main() {
    uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint i = group * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i < pc.n4) {
        z[i] = pc.a * x[i] + y[i];
    }
}
