#include "ds/intrusive_list.h"

#include <gtest/gtest.h>

#include <list>
#include <random>
#include <vector>

#include "base/check.h"

namespace hpcalloc {
namespace {

struct Span {  // stands for a run or a free chunk
  int id = 0;
  IntrusiveListNode<Span> link;
  IntrusiveListNode<Span> other_link;  // a second list the run can be on
};

using SpanList = IntrusiveList<Span, &Span::link>;

std::vector<int> ids(const SpanList& list) {
  std::vector<int> out;
  for (const Span* r = list.front(); r != nullptr; r = SpanList::next(r)) out.push_back(r->id);
  return out;
}

std::vector<int> ids_backwards(const SpanList& list) {
  std::vector<int> out;
  for (const Span* r = list.back(); r != nullptr; r = SpanList::prev(r)) out.push_back(r->id);
  return out;
}

TEST(IntrusiveList, StartsEmpty) {
  SpanList list;
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(list.front(), nullptr);
  EXPECT_EQ(list.back(), nullptr);
  EXPECT_EQ(list.pop_front(), nullptr);
  EXPECT_EQ(list.pop_back(), nullptr);
}

TEST(IntrusiveList, PushFrontAndBackKeepOrder) {
  Span r[4];
  for (int i = 0; i < 4; ++i) r[i].id = i;
  SpanList list;
  list.push_back(&r[1]);
  list.push_front(&r[0]);
  list.push_back(&r[2]);
  list.push_back(&r[3]);
  EXPECT_EQ(list.size(), 4u);
  EXPECT_EQ(ids(list), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(ids_backwards(list), (std::vector<int>{3, 2, 1, 0}));
  EXPECT_EQ(list.front(), &r[0]);
  EXPECT_EQ(list.back(), &r[3]);
}

TEST(IntrusiveList, RemoveHeadMiddleTailAndOnly) {
  Span r[4];
  for (int i = 0; i < 4; ++i) r[i].id = i;
  SpanList list;
  for (Span& x : r) list.push_back(&x);
  list.remove(&r[2]);  // middle
  EXPECT_EQ(ids(list), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(r[2].link.prev, nullptr);
  EXPECT_EQ(r[2].link.next, nullptr);
  list.remove(&r[0]);  // head
  EXPECT_EQ(ids(list), (std::vector<int>{1, 3}));
  list.remove(&r[3]);  // tail
  EXPECT_EQ(ids(list), (std::vector<int>{1}));
  EXPECT_EQ(ids_backwards(list), (std::vector<int>{1}));
  list.remove(&r[1]);  // only
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.front(), nullptr);
  EXPECT_EQ(list.back(), nullptr);
  // A removed element can be linked again.
  list.push_front(&r[2]);
  EXPECT_EQ(ids(list), (std::vector<int>{2}));
}

TEST(IntrusiveList, PopFrontAndBack) {
  Span r[3];
  for (int i = 0; i < 3; ++i) r[i].id = i;
  SpanList list;
  for (Span& x : r) list.push_back(&x);
  EXPECT_EQ(list.pop_front(), &r[0]);
  EXPECT_EQ(list.pop_back(), &r[2]);
  EXPECT_EQ(list.pop_front(), &r[1]);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.size(), 0u);
}

TEST(IntrusiveList, ElementOnTwoListsThroughTwoNodes) {
  Span r[3];
  for (int i = 0; i < 3; ++i) r[i].id = i;
  SpanList by_link;
  IntrusiveList<Span, &Span::other_link> by_other;
  for (Span& x : r) {
    by_link.push_back(&x);
    by_other.push_front(&x);
  }
  by_link.remove(&r[1]);
  EXPECT_EQ(ids(by_link), (std::vector<int>{0, 2}));
  EXPECT_EQ(by_other.size(), 3u);
  EXPECT_TRUE(by_other.contains(&r[1]));
  EXPECT_FALSE(by_link.contains(&r[1]));
  EXPECT_EQ(by_other.front(), &r[2]);
}

TEST(IntrusiveList, IsLinkedTellsSoleHeadMiddleAndUnlinkedApart) {
  Span r[3];
  SpanList list;
  EXPECT_FALSE(list.is_linked(&r[0]));
  list.push_back(&r[0]);  // sole element: null links, but the head
  EXPECT_TRUE(list.is_linked(&r[0]));
  EXPECT_FALSE(list.is_linked(&r[1]));
  list.push_back(&r[1]);
  list.push_back(&r[2]);
  for (const Span& x : r) EXPECT_TRUE(list.is_linked(&x));
  list.remove(&r[1]);
  EXPECT_FALSE(list.is_linked(&r[1]));
  EXPECT_TRUE(list.is_linked(&r[0]));
  EXPECT_TRUE(list.is_linked(&r[2]));
  list.pop_front();
  list.pop_front();
  EXPECT_FALSE(list.is_linked(&r[0]));
  EXPECT_FALSE(list.is_linked(&r[2]));
}

TEST(IntrusiveList, RangeForVisitsEveryElementInOrder) {
  Span r[4];
  for (int i = 0; i < 4; ++i) r[i].id = i;
  SpanList list;
  std::vector<int> seen;
  for (Span* x : list) seen.push_back(x->id);
  EXPECT_TRUE(seen.empty());
  for (Span& x : r) list.push_back(&x);
  for (Span* x : list) seen.push_back(x->id);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
}

// What a heap does when it releases the empty segments of a list it walks.
TEST(IntrusiveList, RangeForToleratesRemovingTheCurrentElement) {
  constexpr int kCount = 8;
  for (unsigned mask = 0; mask < (1u << kCount); mask += 7) {
    Span r[kCount];
    SpanList list;
    SpanList moved;  // through the same links: they are rewritten mid-walk
    for (int i = 0; i < kCount; ++i) {
      r[i].id = i;
      list.push_back(&r[i]);
    }
    std::vector<int> seen;
    std::vector<int> kept;
    for (Span* x : list) {
      seen.push_back(x->id);
      if ((mask >> x->id) & 1) {
        list.remove(x);
        moved.push_back(x);
      } else {
        kept.push_back(x->id);
      }
    }
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7})) << mask;
    EXPECT_EQ(ids(list), kept) << mask;
    EXPECT_EQ(list.size() + moved.size(), std::size_t{kCount}) << mask;
  }
}

TEST(IntrusiveList, ForgetAllEmptiesWithoutTouchingElements) {
  Span r[3];
  SpanList list;
  for (Span& x : r) list.push_back(&x);
  list.forget_all();
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(list.back(), nullptr);
  EXPECT_EQ(r[1].link.prev, &r[0]);  // stale, as documented
  EXPECT_EQ(r[1].link.next, &r[2]);
}

// Checked builds catch linking an element that is already on the list.
TEST(IntrusiveListDeathTest, DoubleInsertionIsCaughtInCheckedBuilds) {
  if (!kChecked) GTEST_SKIP() << "HPCALLOC_ASSERT is compiled out";
  Span r[2];
  SpanList list;
  list.push_back(&r[0]);
  EXPECT_DEATH(list.push_back(&r[0]), "assertion failed");  // sole element
  list.push_back(&r[1]);
  EXPECT_DEATH(list.push_front(&r[1]), "assertion failed");
}

// Random operations against std::list.
TEST(IntrusiveList, MatchesStdListOnRandomOperations) {
  constexpr int kElements = 32;
  Span r[kElements];
  for (int i = 0; i < kElements; ++i) r[i].id = i;
  bool linked[kElements] = {};
  SpanList list;
  std::list<int> ref;
  std::mt19937 rng(7);
  for (int op = 0; op < 5000; ++op) {
    const int i = static_cast<int>(rng() % kElements);
    switch (rng() % 4) {
      case 0:
      case 1:
        if (!linked[i]) {
          if (rng() % 2) {
            list.push_front(&r[i]);
            ref.push_front(i);
          } else {
            list.push_back(&r[i]);
            ref.push_back(i);
          }
          linked[i] = true;
        } else {
          list.remove(&r[i]);
          ref.remove(i);
          linked[i] = false;
        }
        break;
      case 2:
        if (Span* x = list.pop_front()) {
          ASSERT_EQ(x->id, ref.front());
          ref.pop_front();
          linked[x->id] = false;
        }
        break;
      case 3:
        if (Span* x = list.pop_back()) {
          ASSERT_EQ(x->id, ref.back());
          ref.pop_back();
          linked[x->id] = false;
        }
        break;
    }
    ASSERT_EQ(list.size(), ref.size());
    ASSERT_EQ(ids(list), std::vector<int>(ref.begin(), ref.end()));
    for (int k = 0; k < kElements; ++k) ASSERT_EQ(list.is_linked(&r[k]), linked[k]) << k;
  }
}

}  // namespace
}  // namespace hpcalloc
