;; Copies 32 MiB within memory with one instruction, forever.
(module
  (memory (export "memory") 1024 1024)
  (func (export "_start")
    (loop $l
      (memory.copy (i32.const 0) (i32.const 33554432) (i32.const 33554432))
      (br $l))))
