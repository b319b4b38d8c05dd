#!/usr/bin/env bash
# tests/exports.sh -- the dynamic symbols of libgomalloc.so are exactly the
# exported set of DESIGN.md: the malloc family, glibc's __libc_* names,
# free_sized/free_aligned_sized, the C++ operators new/delete (plain, array,
# sized, aligned, nothrow) and the gm_* functions of include/gomalloc.h.
# Everything else must be hidden (-fvisibility=hidden); a symbol that leaks
# out interposes on programs under LD_PRELOAD.
#
# Run by `make check` (GM_BUILDDIR = top build dir, srcdir = top source dir),
# or by hand: GM_BUILDDIR=build srcdir=. bash tests/exports.sh
set -u
builddir=${GM_BUILDDIR:-.}
srcdir=${srcdir:-.}
so=$builddir/.libs/libgomalloc.so
header=$srcdir/include/gomalloc.h
failed=0

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; failed=1; }

c_api="malloc free calloc realloc reallocarray posix_memalign aligned_alloc
memalign valloc pvalloc malloc_usable_size malloc_trim mallopt mallinfo
mallinfo2 malloc_stats malloc_info free_sized free_aligned_sized
__libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign
__libc_valloc __libc_pvalloc __posix_memalign cfree"

# operator new / new[]: (size_t), nothrow, align_val_t, align_val_t + nothrow
# operator delete / delete[]: (void*), nothrow, sized, aligned, sized+aligned,
# aligned + nothrow.  Itanium C++ ABI names, size_t = unsigned long (m).
cxx_api="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t
_ZnwmSt11align_val_t _ZnamSt11align_val_t
_ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
_ZdlPv _ZdaPv _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvm _ZdaPvm
_ZdlPvSt11align_val_t _ZdaPvSt11align_val_t
_ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
_ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"

if [ ! -f "$so" ]; then
	fail "exports: library" "no $so"
	exit 1
fi
if [ ! -f "$header" ]; then
	fail "exports: header" "no $header"
	exit 1
fi

# Every function the public header declares: `gm_name(` (not the typedef'd
# callback type, which is `(*gm_walk_fn)`).
gm_api=$(sed -e 's,/\*.*\*/,,' "$header" | grep -oE '\bgm_[A-Za-z0-9_]+[[:space:]]*\(' |
	sed 's/[[:space:]]*($//' | sort -u)
if [ -z "$gm_api" ]; then
	fail "exports: gm_* functions in gomalloc.h" "none found in $header"
fi

allowed=$(printf '%s\n' $c_api $cxx_api $gm_api | sort -u)
actual=$(nm -D --defined-only "$so" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
if [ -z "$actual" ]; then
	fail "exports: nm -D" "no dynamic symbols read from $so"
	exit 1
fi

missing=$(comm -23 <(echo "$allowed") <(echo "$actual"))
extra=$(comm -13 <(echo "$allowed") <(echo "$actual"))

check_group() { # name, list: every symbol of the list must be exported
	local name=$1 list=$2 miss
	miss=$(comm -12 <(printf '%s\n' $list | sort -u) <(echo "$missing") | tr '\n' ' ')
	if [ -z "$miss" ]; then
		pass "exports: all $(printf '%s\n' $list | wc -l) $name exported"
	else
		fail "exports: $name" "not exported: $miss"
	fi
}
check_group "C malloc-family and __libc_* symbols" "$c_api"
check_group "C++ operators new/delete" "$cxx_api"
check_group "gm_* functions of gomalloc.h" "$gm_api"

if [ -z "$extra" ]; then
	pass "exports: nothing outside the allow-list ($(echo "$actual" | wc -l) symbols)"
else
	fail "exports: allow-list" "also exported: $(echo "$extra" | tr '\n' ' ')"
fi

# The C++ operators must be the library's own definitions, not undefined
# references resolved elsewhere, and the library must not need another
# allocator: no undefined malloc/free of its own.
undef=$(nm -D --undefined-only "$so" | awk '{ print $2 }' | sed 's/@.*//' |
	grep -xE 'malloc|free|calloc|realloc|_Znwm|_ZdlPv|memalign|posix_memalign|aligned_alloc' | tr '\n' ' ')
if [ -z "$undef" ]; then
	pass "exports: no allocator symbol left undefined"
else
	fail "exports: undefined allocator symbols" "$undef"
fi

exit $failed
