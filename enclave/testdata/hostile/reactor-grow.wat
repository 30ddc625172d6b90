;; A reactor whose every run grows its memory to the limit and writes all
;; of it. Warm instances keep what they grew.
(module
  (memory (export "memory") 1)
  (func (export "_initialize"))
  (func (export "vouch_run") (param i32) (result i32) (local $page i32)
    (block $full
      (loop $grow
        (local.set $page (memory.grow (i32.const 16)))
        (br_if $full (i32.eq (local.get $page) (i32.const -1)))
        (memory.fill (i32.shl (local.get $page) (i32.const 16)) (i32.const 1) (i32.const 1048576))
        (br $grow)))
    (i32.const 0)))
