// A single-threaded small-object workload in the style of bignum and
// computer-algebra code (Python ints, Lisp bignums, a small CAS): values are
// immutable, so every arithmetic step allocates its result and the operands it
// replaces are freed at once. Nearly every block is 16-136 bytes and lives for
// a few operations; a memo table and a table of kept results hold a few
// hundred long-lived blocks scattered among them. Each round runs four phases:
//   fibonacci  F(k) by k immutable additions and again by fast doubling
//              (multiplications), cached in the memo table;
//   binomial   (a x + b)^n, a and b of up to --max-bits bits, expanded one
//              factor at a time as a linked list of terms;
//   factorial  n! by n small multiplications and by a product tree, then
//              converted to decimal by repeated division;
//   calculus   a random expression tree differentiated, then simplified
//              (constant folding, x*0, x*1, x+0), the result kept for a while.
// Integers are malloc'ed limb arrays, as GMP's are; list and tree nodes come
// from new/delete (which g++ compiles to the sized operator delete).
//
// Every result is checked by an independent method: the two bignum methods
// must agree exactly (the expansion's coefficients must add up to (a + b)^n
// by repeated squaring), and each value's residue modulo the prime 2^61-1 must
// equal the one modular arithmetic gives (Fibonacci by modular fast doubling,
// binomials and factorials from modular factorial tables, derivatives by
// dual-number evaluation). Headers carry guard words, and kept blocks are
// checked again when they are evicted; at the end 100!'s digit sum (648) and
// F(100) are compared with their known values. A wrong result is reported as
// corruption (exit 3): with a correct program only the allocator can cause it.
// The work is single-threaded whatever --threads says; the result line says
// threads=1.
#include <algorithm>
#include <string>
#include <vector>

#include "bignum_arith.h"
#include "workload_common.h"

namespace {

using namespace hpcalloc::bench::bignum;
using hpcalloc::bench::fail_corruption;
using hpcalloc::bench::mix64;
using hpcalloc::bench::Rng;

// ---- Phase 1: Fibonacci numbers, two ways, with a memo table ----

Big* fib_by_additions(std::uint64_t k) {
  Big* a = big_from(0);
  Big* b = big_from(1);
  for (std::uint64_t i = 0; i < k; ++i) {
    Big* c = big_add(a, b);
    big_free(a);
    a = b;
    b = c;
  }
  big_free(b);
  return a;
}

Big* fib_by_doubling(std::uint64_t k) {
  Big* f = big_from(0);  // F(m)
  Big* g = big_from(1);  // F(m+1)
  for (int bit = 63 - __builtin_clzll(k | 1); bit >= 0; --bit) {
    Big* twice_g = big_add(g, g);
    Big* diff = big_sub(twice_g, f);
    Big* c = big_mul(f, diff);  // F(2m) = F(m) (2 F(m+1) - F(m))
    Big* ff = big_mul(f, f);
    Big* gg = big_mul(g, g);
    Big* d = big_add(ff, gg);  // F(2m+1) = F(m)^2 + F(m+1)^2
    for (Big* temporary : {twice_g, diff, ff, gg, f, g}) big_free(temporary);
    if ((k >> bit) & 1) {
      f = d;
      g = big_add(c, d);
      big_free(c);
    } else {
      f = c;
      g = d;
    }
  }
  big_free(g);
  return f;
}

struct MemoEntry {
  std::uint64_t k = 0;
  Big* value = nullptr;
};

// Returns 1 on a memo hit, else 0.
std::uint64_t fibonacci_phase(Rng& rng, std::uint64_t max_k, std::vector<MemoEntry>& memo) {
  const std::uint64_t k = rng.between(max_k / 8, max_k);
  MemoEntry& entry = memo[mix64(k) % memo.size()];
  if (entry.value != nullptr && entry.k == k) {
    if (big_residue(entry.value) != fib_mod(k)) fail_corruption("memoised Fibonacci changed");
    return 1;
  }
  Big* slow = fib_by_additions(k);
  Big* fast = fib_by_doubling(k);
  if (!big_equal(slow, fast) || big_residue(slow) != fib_mod(k)) {
    fail_corruption("Fibonacci methods disagree");
  }
  big_free(fast);
  if (entry.value != nullptr) {
    if (big_residue(entry.value) != fib_mod(entry.k)) fail_corruption("evicted Fibonacci changed");
    big_free(entry.value);
  }
  entry = {k, slow};
  return 0;
}

// ---- Phase 2: (a x + b)^n as a linked list of terms ----

struct Term {
  Big* coefficient;
  Term* next;
  std::uint32_t exponent;
  std::uint32_t guard;  // kTermGuard ^ exponent
};
constexpr std::uint32_t kTermGuard = 0x7e3a11c5;

Term* new_term(Big* coefficient, std::uint32_t exponent) {
  ++allocation_count;
  return new Term{coefficient, nullptr, exponent, kTermGuard ^ exponent};
}

const Term* checked(const Term* t) {
  if (t->guard != (kTermGuard ^ t->exponent)) fail_corruption("polynomial term changed");
  return t;
}

void free_polynomial(Term* t) {
  while (t != nullptr) {
    Term* next = checked(t)->next;
    big_free(t->coefficient);
    delete t;
    t = next;
  }
}

// q * (a x + b) as a new list, q's terms in ascending exponent order: the new
// coefficient of x^k is b c_k + a c_(k-1), two products freed as soon as added.
Term* times_linear(const Term* q, std::uint64_t a, std::uint64_t b) {
  Term* head = nullptr;
  Term** tail = &head;
  const Term* previous = nullptr;
  for (const Term* t = q; t != nullptr; t = t->next) {
    Big* c = big_mul_small(checked(t)->coefficient, b);
    if (previous != nullptr) {
      Big* shifted = big_mul_small(previous->coefficient, a);
      Big* sum = big_add(c, shifted);
      big_free(c);
      big_free(shifted);
      c = sum;
    }
    *tail = new_term(c, t->exponent);
    tail = &(*tail)->next;
    previous = t;
  }
  *tail = new_term(big_mul_small(previous->coefficient, a), previous->exponent + 1);
  return head;
}

// base^n by repeated squaring.
Big* big_pow(std::uint64_t base, std::uint64_t n) {
  Big* result = big_from(1);
  Big* square = big_from(base);
  for (; n != 0; n >>= 1) {
    if (n & 1) {
      Big* next = big_mul(result, square);
      big_free(result);
      result = next;
    }
    if (n > 1) {
      Big* next = big_mul(square, square);
      big_free(square);
      square = next;
    }
  }
  big_free(square);
  return result;
}

void binomial_phase(Rng& rng, std::uint64_t max_n, std::uint64_t max_bits,
                    const FactorialTable& table) {
  const auto n = static_cast<std::uint32_t>(rng.between(max_n / 4, max_n));
  const std::uint64_t bits = rng.between(4, max_bits);
  const std::uint64_t a = rng.between(1, (std::uint64_t{1} << bits) - 1);
  const std::uint64_t b = rng.between(1, (std::uint64_t{1} << bits) - 1);
  Term* q = new_term(big_from(1), 0);
  for (std::uint32_t i = 0; i < n; ++i) {
    Term* next = times_linear(q, a, b);
    free_polynomial(q);
    q = next;
  }
  // Each coefficient is C(n, k) a^k b^(n-k) mod p, and together they sum to
  // (a + b)^n exactly.
  Big* sum = big_from(0);
  std::uint32_t k = 0;
  for (const Term* t = q; t != nullptr; t = t->next, ++k) {
    const std::uint64_t expected =
        mod_mul(table.binomial(n, k), mod_mul(mod_pow(a, k), mod_pow(b, n - k)));
    if (checked(t)->exponent != k || big_residue(t->coefficient) != expected) {
      fail_corruption("binomial coefficient wrong");
    }
    Big* next = big_add(sum, t->coefficient);
    big_free(sum);
    sum = next;
  }
  Big* power = big_pow(a + b, n);
  if (k != n + 1 || !big_equal(sum, power)) {
    fail_corruption("coefficients of (a x + b)^n do not sum to (a + b)^n");
  }
  big_free(power);
  big_free(sum);
  free_polynomial(q);
}

// ---- Phase 3: factorials, two ways, and their decimal digits ----

Big* product_tree(std::uint64_t lo, std::uint64_t hi) {  // lo * (lo+1) * ... * hi
  if (hi - lo < 4) {
    Big* r = big_from(lo);
    for (std::uint64_t i = lo + 1; i <= hi; ++i) {
      Big* next = big_mul_small(r, i);
      big_free(r);
      r = next;
    }
    return r;
  }
  const std::uint64_t mid = lo + (hi - lo) / 2;
  Big* left = product_tree(lo, mid);
  Big* right = product_tree(mid + 1, hi);
  Big* r = big_mul(left, right);
  big_free(left);
  big_free(right);
  return r;
}

// Decimal digits of a, least significant first, in chunks of 19 (the
// quotient of each division replaces the previous one).
std::vector<std::uint64_t> decimal_chunks(const Big* a) {
  constexpr std::uint64_t kChunk = 10000000000000000000ULL;  // 10^19
  std::vector<std::uint64_t> chunks;
  Big* rest = big_copy(a);
  while (rest->size != 0) {
    std::uint64_t chunk;
    Big* quotient = big_div_small(rest, kChunk, &chunk);
    big_free(rest);
    rest = quotient;
    chunks.push_back(chunk);
  }
  big_free(rest);
  return chunks;
}

std::uint64_t digit_sum(const std::vector<std::uint64_t>& chunks) {
  std::uint64_t sum = 0;
  for (std::uint64_t c : chunks) {
    for (; c != 0; c /= 10) sum += c % 10;
  }
  return sum;
}

std::string to_decimal(const Big* a) {
  const std::vector<std::uint64_t> chunks = decimal_chunks(a);
  if (chunks.empty()) return "0";
  std::string text = std::to_string(chunks.back());
  for (std::size_t i = chunks.size() - 1; i-- > 0;) {
    const std::string digits = std::to_string(chunks[i]);
    text += std::string(19 - digits.size(), '0') + digits;
  }
  return text;
}

Big* factorial_by_steps(std::uint64_t n) {
  Big* r = big_from(1);
  for (std::uint64_t i = 2; i <= n; ++i) {
    Big* next = big_mul_small(r, i);
    big_free(r);
    r = next;
  }
  return r;
}

void factorial_phase(Rng& rng, std::uint64_t max_n, const FactorialTable& table) {
  const std::uint64_t n = rng.between(max_n / 4, max_n);
  Big* steps = factorial_by_steps(n);
  Big* tree = product_tree(1, n);
  if (!big_equal(steps, tree)) fail_corruption("factorial methods disagree");
  // The decimal digits, read back mod p, must give n! mod p.
  const std::vector<std::uint64_t> chunks = decimal_chunks(steps);
  std::uint64_t value = 0;
  for (std::size_t i = chunks.size(); i-- > 0;) {
    value = mod_add(mod_mul(value, mod_reduce(10000000000000000000ULL)), chunks[i]);
  }
  if (value != table.fact[n]) fail_corruption("factorial's decimal digits wrong");
  big_free(steps);
  big_free(tree);
}

// ---- Phase 4: expression trees, differentiated and simplified ----

enum class Op : std::uint8_t { kConst, kVar, kAdd, kSub, kMul };

// 32 bytes. `guard` seals the operator and constant; values are mod p.
struct Expr {
  Op op;
  std::uint32_t guard;
  std::uint64_t value;
  Expr* left;
  Expr* right;
};

std::uint32_t expr_guard(Op op, std::uint64_t value) {
  return static_cast<std::uint32_t>(mix64((value << 3) ^ static_cast<std::uint64_t>(op)));
}

Expr* make(Op op, Expr* left = nullptr, Expr* right = nullptr, std::uint64_t value = 0) {
  ++allocation_count;
  return new Expr{op, expr_guard(op, value), value, left, right};
}
Expr* constant(std::uint64_t value) { return make(Op::kConst, nullptr, nullptr, value); }

const Expr* checked(const Expr* e) {
  if (e->guard != expr_guard(e->op, e->value)) fail_corruption("expression node changed");
  return e;
}

bool is_leaf(const Expr* e) { return e->op == Op::kConst || e->op == Op::kVar; }

void free_tree(Expr* e) {
  if (!is_leaf(checked(e))) {
    free_tree(e->left);
    free_tree(e->right);
  }
  delete e;
}

Expr* random_tree(Rng& rng, std::uint64_t depth) {
  if (depth == 0 || rng.chance(0.2)) {
    return rng.chance(0.5) ? make(Op::kVar) : constant(rng.below(10));
  }
  static constexpr Op kOps[] = {Op::kAdd, Op::kSub, Op::kMul, Op::kMul};
  const Op op = kOps[rng.below(4)];
  Expr* left = random_tree(rng, depth - 1);
  return make(op, left, random_tree(rng, depth - 1));
}

Expr* copy(const Expr* e) {
  if (is_leaf(checked(e))) return make(e->op, nullptr, nullptr, e->value);
  return make(e->op, copy(e->left), copy(e->right));
}

std::uint64_t evaluate(const Expr* e, std::uint64_t x) {
  switch (checked(e)->op) {
    case Op::kConst: return e->value;
    case Op::kVar: return x;
    case Op::kAdd: return mod_add(evaluate(e->left, x), evaluate(e->right, x));
    case Op::kSub: return mod_sub(evaluate(e->left, x), evaluate(e->right, x));
    case Op::kMul: return mod_mul(evaluate(e->left, x), evaluate(e->right, x));
  }
  return 0;
}

// (f(x), f'(x)) by dual numbers: the derivative's value without a new tree.
std::pair<std::uint64_t, std::uint64_t> evaluate_dual(const Expr* e, std::uint64_t x) {
  if (checked(e)->op == Op::kConst) return {e->value, 0};
  if (e->op == Op::kVar) return {x, 1};
  const auto [a, da] = evaluate_dual(e->left, x);
  const auto [b, db] = evaluate_dual(e->right, x);
  if (e->op == Op::kAdd) return {mod_add(a, b), mod_add(da, db)};
  if (e->op == Op::kSub) return {mod_sub(a, b), mod_sub(da, db)};
  return {mod_mul(a, b), mod_add(mod_mul(da, b), mod_mul(a, db))};
}

Expr* derive(const Expr* e) {
  switch (checked(e)->op) {
    case Op::kConst: return constant(0);
    case Op::kVar: return constant(1);
    case Op::kAdd:
    case Op::kSub: return make(e->op, derive(e->left), derive(e->right));
    case Op::kMul:
      return make(Op::kAdd, make(Op::kMul, derive(e->left), copy(e->right)),
                  make(Op::kMul, copy(e->left), derive(e->right)));
  }
  return nullptr;
}

bool is_constant(const Expr* e, std::uint64_t v) { return e->op == Op::kConst && e->value == v; }

// Simplifies e bottom-up, consuming it: nodes that drop out are freed at once.
Expr* simplify(Expr* e) {
  if (is_leaf(checked(e))) return e;
  Expr* l = simplify(e->left);
  Expr* r = simplify(e->right);
  const Op op = e->op;
  delete e;
  if (l->op == Op::kConst && r->op == Op::kConst) {
    const std::uint64_t a = l->value, b = r->value;
    delete l;
    delete r;
    return constant(op == Op::kAdd   ? mod_add(a, b)
                    : op == Op::kSub ? mod_sub(a, b)
                                     : mod_mul(a, b));
  }
  if (op == Op::kMul && (is_constant(l, 0) || is_constant(r, 0))) {
    free_tree(l);
    free_tree(r);
    return constant(0);
  }
  const bool drop_left =
      (op == Op::kAdd && is_constant(l, 0)) || (op == Op::kMul && is_constant(l, 1));
  const bool drop_right =
      (op != Op::kMul && is_constant(r, 0)) || (op == Op::kMul && is_constant(r, 1));
  if (drop_left) {
    delete l;
    return r;
  }
  if (drop_right) {
    delete r;
    return l;
  }
  return make(op, l, r);
}

struct KeptTree {
  Expr* tree = nullptr;
  std::uint64_t x = 0, value = 0;  // tree evaluated at x
};

void calculus_phase(Rng& rng, std::uint64_t max_depth, std::vector<KeptTree>& kept) {
  Expr* f = random_tree(rng, rng.between(max_depth / 2, max_depth));
  const std::uint64_t x = rng.next() % kPrime;
  const auto [fx, dfx] = evaluate_dual(f, x);
  Expr* df = derive(f);
  if (evaluate(df, x) != dfx) fail_corruption("derivative tree wrong");
  df = simplify(df);
  f = simplify(f);
  if (evaluate(df, x) != dfx || evaluate(f, x) != fx) fail_corruption("simplification wrong");
  free_tree(f);
  KeptTree& slot = kept[rng.below(static_cast<std::uint32_t>(kept.size()))];
  if (slot.tree != nullptr) {
    if (evaluate(slot.tree, slot.x) != slot.value) fail_corruption("kept derivative changed");
    free_tree(slot.tree);
  }
  slot = {df, x, dfx};
}

// Known values checked once the timed rounds are over, so that the bignum code
// is anchored to outside facts as well as to the modular cross-checks.
void check_known_values() {
  Big* f100 = fib_by_doubling(100);
  if (to_decimal(f100) != "354224848179261915075") fail_corruption("F(100) wrong");
  Big* f100_factorial = factorial_by_steps(100);
  if (digit_sum(decimal_chunks(f100_factorial)) != 648) fail_corruption("digit sum of 100! wrong");
  big_free(f100);
  big_free(f100_factorial);
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "bignum",
      "Single-threaded bignum / computer-algebra churn: immutable integers and tree\n"
      "nodes of 16-136 bytes, nearly all freed right away, a few kept in tables.\n"
      "--threads is accepted and ignored (the work is single-threaded).");
  std::uint64_t rounds = 12000, max_fib = 1250, max_binomial = 24, max_bits = 36;
  std::uint64_t max_factorial = 140;
  std::uint64_t max_depth = 10, memo_slots = 256, kept_trees = 64;
  options.add_count("rounds", &rounds, "rounds of the four phases at scale 1");
  options.add_count("max-fib", &max_fib, "largest Fibonacci index (F(1250) has 14 limbs)");
  options.add_count("max-binomial", &max_binomial, "largest n of (a x + b)^n");
  options.add_count("max-bits", &max_bits, "largest a and b of (a x + b)^n, in bits");
  options.add_count("max-factorial", &max_factorial, "largest n of n!");
  options.add_count("max-depth", &max_depth, "largest depth of a random expression tree");
  options.add_count("memo-slots", &memo_slots, "long-lived Fibonacci memo entries");
  options.add_count("kept-trees", &kept_trees, "long-lived simplified derivatives");
  options.parse(argc, argv);
  if (max_fib < 8 || max_fib > 20000 || max_binomial < 4 || max_binomial > 4000 || max_bits < 4 ||
      max_bits > 62 || max_factorial < 4 || max_factorial > 4000 || max_depth < 2 ||
      max_depth > 24 || memo_slots == 0 || kept_trees == 0) {
    std::fprintf(stderr,
                 "bench_bignum: need 8 <= max-fib <= 20000, 4 <= max-binomial <= 4000,\n"
                 "4 <= max-bits <= 62, 4 <= max-factorial <= 4000, 2 <= max-depth <= 24,\n"
                 "memo-slots >= 1 and kept-trees >= 1\n");
    return 2;
  }
  rounds = options.scaled(rounds);

  const FactorialTable table(std::max(max_binomial, max_factorial));
  std::vector<MemoEntry> memo(memo_slots);
  std::vector<KeptTree> kept(kept_trees);
  Rng rng(options.seed, 0);
  std::uint64_t memo_hits = 0;

  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t round = 0; round < rounds; ++round) {
    memo_hits += fibonacci_phase(rng, max_fib, memo);
    binomial_phase(rng, max_binomial, max_bits, table);
    factorial_phase(rng, max_factorial, table);
    calculus_phase(rng, max_depth, kept);
  }
  for (MemoEntry& entry : memo) {
    if (entry.value == nullptr) continue;
    if (big_residue(entry.value) != fib_mod(entry.k)) fail_corruption("memoised Fibonacci changed");
    big_free(entry.value);
  }
  for (KeptTree& slot : kept) {
    if (slot.tree == nullptr) continue;
    if (evaluate(slot.tree, slot.x) != slot.value) fail_corruption("kept derivative changed");
    free_tree(slot.tree);
  }
  const double seconds = hpcalloc::bench::seconds_between(start, std::chrono::steady_clock::now());

  check_known_values();
  hpcalloc::bench::print_result(
      "bignum", 1, seconds, allocation_count,
      {{"rounds", std::to_string(rounds)}, {"memo_hits", std::to_string(memo_hits)}});
  return 0;
}
