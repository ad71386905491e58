// Runs CUDA C kernels on CPU threads, to check their indexing and barriers where no GPU is available.
// Each block runs as blockDim real threads meeting at a std::barrier for __syncthreads(); blocks run one
// after the other, so __shared__ arrays (function statics here) belong to the running block.
// Not a performance model, and not a substitute for the GPU tests: warp-level behaviour is not emulated.
#pragma once
#include <algorithm>
#include <barrier>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<> *emulated_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
#define __launch_bounds__(n)
inline void __syncthreads() { emulated_barrier->arrive_and_wait(); }
using std::min;

template <class Kernel> void emulate_launch(dim3 grid, dim3 block, Kernel kernel) {
    gridDim = grid;
    blockDim = block;
    const unsigned threads = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                std::barrier<> barrier(threads);
                emulated_barrier = &barrier;
                std::vector<std::thread> pool;
                for (unsigned tz = 0; tz < block.z; ++tz)
                    for (unsigned ty = 0; ty < block.y; ++ty)
                        for (unsigned tx = 0; tx < block.x; ++tx)
                            pool.emplace_back([=] {
                                threadIdx = {tx, ty, tz};
                                blockIdx = {bx, by, bz};
                                kernel();
                            });
                for (auto &t : pool) t.join();
            }
}
