#version 450
// vkdoctor: target-env=vulkan1.0
//
// 2-D convolution (cross-correlation, as numpy slicing computes it) of a single-channel float
// image with a (2R+1)x(2R+1) filter, zero padding, output the size of the input.  Each
// workgroup stages its tile plus the R-wide apron in shared memory once, so every image texel
// is read from memory about once instead of (2R+1)^2 times.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 16, local_size_x_id = 0, local_size_y = 16, local_size_y_id = 1) in;
layout(constant_id = 2) const uint R = 2u;  // filter radius

const uint TAPS = 2u * R + 1u;
const uint TILE_W = gl_WorkGroupSize.x + 2u * R;
const uint TILE_H = gl_WorkGroupSize.y + 2u * R;

layout(std430, binding = 0) readonly buffer Image { float img[]; };
layout(std430, binding = 1) readonly buffer Weights { float weights[]; };  // TAPS*TAPS, row-major
layout(std430, binding = 2) writeonly buffer Out { float outp[]; };

layout(push_constant) uniform Push {
    uint width;
    uint height;
} pc;

shared float tile[TILE_W * TILE_H];
shared float w[TAPS * TAPS];

void main() {
    uint lx = gl_LocalInvocationID.x;
    uint ly = gl_LocalInvocationID.y;
    uint threads = gl_WorkGroupSize.x * gl_WorkGroupSize.y;
    uint lid = ly * gl_WorkGroupSize.x + lx;
    int x0 = int(gl_WorkGroupID.x * gl_WorkGroupSize.x) - int(R);
    int y0 = int(gl_WorkGroupID.y * gl_WorkGroupSize.y) - int(R);

    for (uint idx = lid; idx < TILE_W * TILE_H; idx += threads) {
        int gx = x0 + int(idx % TILE_W);
        int gy = y0 + int(idx / TILE_W);
        bool inside = gx >= 0 && gy >= 0 && gx < int(pc.width) && gy < int(pc.height);
        tile[idx] = inside ? img[uint(gy) * pc.width + uint(gx)] : 0.0;
    }
    for (uint idx = lid; idx < TAPS * TAPS; idx += threads) {
        w[idx] = weights[idx];
    }
    barrier();

    uint x = gl_GlobalInvocationID.x;
    uint y = gl_GlobalInvocationID.y;
    if (x >= pc.width || y >= pc.height) {
        return;
    }
    float acc = 0.0;
    [[unroll]] for (uint dy = 0u; dy < TAPS; ++dy) {
        [[unroll]] for (uint dx = 0u; dx < TAPS; ++dx) {
            acc = fma(tile[(ly + dy) * TILE_W + lx + dx], w[dy * TAPS + dx], acc);
        }
    }
    outp[y * pc.width + x] = acc;
}
