// The background thread (HPCALLOC_BACKGROUND_THREAD=1, off by default, like
// jemalloc's background_thread): decay (mem/decay.h) otherwise runs on the
// threads' own slow paths, so memory freed just before a program goes idle
// stays resident while it idles. The background thread wakes every quarter
// of the decay delay (10 ms to 1 s) and applies decay to what no thread is
// attending to: the memory sources' caches of mappings and the pooled heaps
// of exited threads (HeapPool::decay_pooled, under the pool's lock). It does
// not touch the heaps of live threads, even sleeping ones: only an owner may
// walk its heap (the fast paths take no lock), so a sleeping thread's free
// pages wait for its next slow path.
//
// Start. The thread is created by the library's load-time constructor, once
// the C library is initialised (a malloc from the dynamic loader or from the
// C library's own start-up may come before pthread_create can work), with
// every signal blocked, so no signal of the program runs on it. It never
// allocates and never exits. A fork's child has no background thread; the
// child starts one when it attaches its next heap (a new thread). Not
// started with HPCALLOC_DECAY_MS=0 or -1: nothing would wait for it.
#pragma once

#include <cstddef>

namespace hpcalloc::internal {

struct Globals;

// Starts the background thread if the settings ask for it and it is not
// running (a heap was just attached: any thread, outside every lock).
void start_background_thread(Globals* g);
// fork(): the child has no background thread (child_after_fork).
void background_thread_after_fork_in_child();
// Decay passes the background thread made (hpc_stat "background_passes").
std::size_t background_passes();

}  // namespace hpcalloc::internal
