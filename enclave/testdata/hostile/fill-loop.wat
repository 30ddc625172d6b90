;; Fills 64 MiB with one instruction, forever. A bulk instruction is not a
;; loop head: only its cost in the interrupt budget bounds how long the
;; guest goes without a safe point.
(module
  (memory (export "memory") 1024 1024)
  (func (export "_start")
    (loop $l
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 67108864))
      (br $l))))
