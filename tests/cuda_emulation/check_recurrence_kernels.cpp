// Checks sb3_rtrl/cells/kernels/linear_recurrence.cu on CPU threads against naive loops in double (see
// cuda_host_emulation.h): real and complex, forward and adjoint. Exit code 0 when every case agrees; one line per case.
#include <cmath>
#include <math.h>

#include "check_common.h"
#include "cuda_host_emulation.h"
#include RECURRENCE_CU

#include <complex>
#include <cstdio>
#include <limits>
#include <random>

// grid and block sizes small enough that the grid-stride loop runs more than once where the width is large
template <typename T>
bool run_case(int steps, int width, bool is_complex, bool adjoint, unsigned blocks, unsigned threads, double tol,
              std::mt19937 &rng) {
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> uniform;
    const int per = is_complex ? 2 : 1;
    const size_t reals = (size_t)steps * width * per;
    std::vector<T> a(reals), b(reals), y(reals, std::numeric_limits<T>::quiet_NaN());
    for (size_t k = 0; k < reals; k += per) {
        // |a| <= 1 as in the cells, zero at some steps (episode starts)
        const double modulus = uniform(rng) < 0.1 ? 0.0 : uniform(rng), angle = 6.283185307179586 * uniform(rng);
        a[k] = (T)(is_complex ? modulus * std::cos(angle) : (2 * uniform(rng) - 1) * modulus);
        if (is_complex) a[k + 1] = (T)(modulus * std::sin(angle));
    }
    for (auto &x : b) x = (T)normal(rng);
    std::vector<double> ref(reals);
    auto at = [&](const std::vector<T> &v, int t, int col) {
        const size_t k = ((size_t)t * width + col) * per;
        return std::complex<double>((double)v[k], is_complex ? (double)v[k + 1] : 0.0);
    };
    for (int col = 0; col < width; ++col) {
        std::complex<double> carry = 0;
        for (int s = 0; s < steps; ++s) {
            const int t = adjoint ? steps - 1 - s : s;
            if (s > 0) carry *= at(a, adjoint ? t + 1 : t, col);
            carry += at(b, t, col);
            const size_t k = ((size_t)t * width + col) * per;
            ref[k] = carry.real();
            if (is_complex) ref[k + 1] = carry.imag();
        }
    }
    const dim3 grid{blocks, 1, 1}, block{threads, 1, 1};
    emulate_launch(grid, block, [&] {
        if constexpr (sizeof(T) == 4) linear_recurrence_f32(a.data(), b.data(), y.data(), steps, width, is_complex, adjoint);
        else linear_recurrence_f64(a.data(), b.data(), y.data(), steps, width, is_complex, adjoint);
    });
    const double err = rel_err(y, ref);
    const bool ok = err <= tol;
    std::printf("%s %s %s %s T=%d width=%d grid=%u x %u  y %.2e\n", ok ? "ok  " : "FAIL", sizeof(T) == 4 ? "f32" : "f64",
                is_complex ? "complex" : "real", adjoint ? "adjoint" : "forward", steps, width, blocks, threads, err);
    return ok;
}

int main() {
    std::mt19937 rng(0);
    bool ok = true;
    // (T, width, blocks, threads): one step, fewer columns than threads, a partial last block, a grid-stride loop.
    const int sizes[][4] = {{1, 1, 1, 32}, {7, 5, 1, 32}, {40, 111, 2, 32}, {50, 200, 3, 16}};
    for (auto &s : sizes)
        for (int is_complex = 0; is_complex < 2; ++is_complex)
            for (int adjoint = 0; adjoint < 2; ++adjoint) {
                ok &= run_case<double>(s[0], s[1], is_complex, adjoint, s[2], s[3], 1e-12, rng);
                ok &= run_case<float>(s[0], s[1], is_complex, adjoint, s[2], s[3], 1e-5, rng);
            }
    return ok ? 0 : 1;
}
