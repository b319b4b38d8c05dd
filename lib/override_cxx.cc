/*
 * override_cxx.cc -- the C++ allocation operators on gomalloc.
 *
 * Throwing forms follow the standard: on failure call the installed
 * new_handler and retry, or throw std::bad_alloc when there is none.
 * nothrow forms return nullptr instead of throwing.  Aligned forms take
 * std::align_val_t; sized deletes ignore the size (the span knows it).
 * Memory comes from malloc.c directly (hidden symbols), not through the
 * exported malloc, so a program that interposes malloc again does not
 * change what operator new does.
 */
#include <cstddef>
#include <cstdlib>
#include <new>

extern "C" {
#include "compiler.h"
void *gm_cxx_alloc(size_t size, size_t align);
void gm_cxx_free(void *p);
}

static void *cxx_new(size_t size, size_t align)
{
	for (;;) {
		void *p = gm_cxx_alloc(size, align);
		if (p != nullptr)
			return p;
		std::new_handler h = std::get_new_handler();
		if (h == nullptr)
			throw std::bad_alloc();
		h();
	}
}

static void *cxx_new_nothrow(size_t size, size_t align) noexcept
{
	try {
		return cxx_new(size, align);
	} catch (...) {
		return nullptr;
	}
}

GM_EXPORT void *operator new(size_t n) { return cxx_new(n, 0); }
GM_EXPORT void *operator new[](size_t n) { return cxx_new(n, 0); }
GM_EXPORT void *operator new(size_t n, const std::nothrow_t &) noexcept { return cxx_new_nothrow(n, 0); }
GM_EXPORT void *operator new[](size_t n, const std::nothrow_t &) noexcept { return cxx_new_nothrow(n, 0); }
GM_EXPORT void *operator new(size_t n, std::align_val_t a) { return cxx_new(n, static_cast<size_t>(a)); }
GM_EXPORT void *operator new[](size_t n, std::align_val_t a) { return cxx_new(n, static_cast<size_t>(a)); }
GM_EXPORT void *operator new(size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
	return cxx_new_nothrow(n, static_cast<size_t>(a));
}
GM_EXPORT void *operator new[](size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
	return cxx_new_nothrow(n, static_cast<size_t>(a));
}

GM_EXPORT void operator delete(void *p) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete[](void *p) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete(void *p, size_t) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete[](void *p, size_t) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete(void *p, std::align_val_t) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete[](void *p, std::align_val_t) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete(void *p, size_t, std::align_val_t) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete[](void *p, size_t, std::align_val_t) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { gm_cxx_free(p); }
GM_EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { gm_cxx_free(p); }
