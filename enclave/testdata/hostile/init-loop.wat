;; A reactor whose _initialize never returns.
(module
  (memory (export "memory") 1)
  (func (export "_initialize") (loop $l (br $l)))
  (func (export "vouch_run") (param i32) (result i32) (i32.const 0)))
