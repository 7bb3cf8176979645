// An intrusive doubly-linked list: the links live in the element (an
// IntrusiveListNode<T> member), so linking never allocates and remove() is
// O(1) given only the element. An element can be on several lists at once
// through different node members. Plain data, owned by one heap: no
// synchronisation.
//
// Invariants: the list is null-terminated at both ends (head's prev and
// tail's next are null); an element that is on no list has both links null
// (remove() and pop_*() reset them), which is_linked() relies on and checked
// builds use to catch double insertion. Whoever hands out an element's
// memory (a memory source handing out a segment header) starts it with null
// links.
#pragma once

#include <cstddef>

#include "base/check.h"

namespace hpcalloc {

template <class T>
struct IntrusiveListNode {
  T* prev = nullptr;
  T* next = nullptr;
};

// Usage: struct Run { IntrusiveListNode<Run> link; ... };
//        IntrusiveList<Run, &Run::link> partial_runs;
template <class T, IntrusiveListNode<T> T::*kNode>
class IntrusiveList {
 public:
  constexpr IntrusiveList() = default;
  // Copying would leave two heads for one chain of links.
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }
  T* front() const { return head_; }
  T* back() const { return tail_; }
  // The element after (before) `element`, nullptr at the end: for iteration.
  static T* next(const T* element) { return (element->*kNode).next; }
  static T* prev(const T* element) { return (element->*kNode).prev; }

  // Whether `element` is on this list, in O(1): an unlinked element has null
  // links, and so does the sole element of a list, which is its head.
  bool is_linked(const T* element) const {
    const IntrusiveListNode<T>& node = element->*kNode;
    return node.prev != nullptr || node.next != nullptr || head_ == element;
  }

  // Front-to-back iteration (`for (T* e : list)`) that reads an element's
  // successor before the loop body sees the element, so the body may remove
  // the element it is given (release it, move it to another list). It must
  // not remove any other element of this list.
  class Iterator {
   public:
    explicit Iterator(T* element) : current_(element), next_(successor(element)) {}
    T* operator*() const { return current_; }
    Iterator& operator++() {
      current_ = next_;
      next_ = successor(current_);
      return *this;
    }
    bool operator==(const Iterator& other) const { return current_ == other.current_; }

   private:
    static T* successor(const T* element) { return element != nullptr ? next(element) : nullptr; }
    T* current_;
    T* next_;
  };
  Iterator begin() const { return Iterator(head_); }
  Iterator end() const { return Iterator(nullptr); }

  void push_front(T* element) {
    IntrusiveListNode<T>& node = element->*kNode;
    assert_unlinked(element);
    node.next = head_;
    if (head_ != nullptr) {
      (head_->*kNode).prev = element;
    } else {
      tail_ = element;
    }
    head_ = element;
    ++size_;
  }

  void push_back(T* element) {
    IntrusiveListNode<T>& node = element->*kNode;
    assert_unlinked(element);
    node.prev = tail_;
    if (tail_ != nullptr) {
      (tail_->*kNode).next = element;
    } else {
      head_ = element;
    }
    tail_ = element;
    ++size_;
  }

  // `element` must be on this list.
  void remove(T* element) {
    IntrusiveListNode<T>& node = element->*kNode;
    HPCALLOC_ASSERT(size_ > 0);
    HPCALLOC_ASSERT(node.prev != nullptr || head_ == element);
    HPCALLOC_ASSERT(node.next != nullptr || tail_ == element);
    if (node.prev != nullptr) {
      (node.prev->*kNode).next = node.next;
    } else {
      head_ = node.next;
    }
    if (node.next != nullptr) {
      (node.next->*kNode).prev = node.prev;
    } else {
      tail_ = node.prev;
    }
    node.prev = nullptr;
    node.next = nullptr;
    --size_;
  }

  // Unlinks and returns the first (last) element; nullptr when empty.
  T* pop_front() {
    T* element = head_;
    if (element != nullptr) remove(element);
    return element;
  }
  T* pop_back() {
    T* element = tail_;
    if (element != nullptr) remove(element);
    return element;
  }

  // Empties the list without touching its elements, whose links are left
  // stale: for an owner giving back the memory the elements live in.
  void forget_all() {
    head_ = nullptr;
    tail_ = nullptr;
    size_ = 0;
  }

  // Test and assertion helper: O(n).
  bool contains(const T* element) const {
    for (const T* e = head_; e != nullptr; e = next(e)) {
      if (e == element) return true;
    }
    return false;
  }

 private:
  void assert_unlinked([[maybe_unused]] const T* element) const {
    // An unlinked element has null links and is not the sole element of
    // this list (whose links are null too).
    HPCALLOC_ASSERT((element->*kNode).prev == nullptr && (element->*kNode).next == nullptr &&
                    head_ != element);
  }

  T* head_ = nullptr;
  T* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace hpcalloc
