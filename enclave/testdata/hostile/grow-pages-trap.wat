;; Grows memory one 64 KiB page at a time and writes every new page, so that
;; it is resident; traps once memory.grow fails.
(module
  (memory (export "memory") 1)
  (func (export "_start") (local $page i32)
    (loop $grow
      (local.set $page (memory.grow (i32.const 1)))
      (if (i32.eq (local.get $page) (i32.const -1))
        (then unreachable))
      (memory.fill (i32.shl (local.get $page) (i32.const 16)) (i32.const 1) (i32.const 65536))
      (br $grow))))
