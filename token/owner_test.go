package token

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestGenerateOwnerToken(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		tok, err := GenerateOwnerToken()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, OwnerTokenPrefix) || len(tok) != len(OwnerTokenPrefix)+43 {
			t.Fatalf("owner token has the wrong shape (length %d)", len(tok))
		}
		if err := ValidateOwnerToken(tok); err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatal("duplicate owner token")
		}
		seen[tok] = true
	}
}

func TestValidateOwnerTokenBadInput(t *testing.T) {
	good, err := GenerateOwnerToken()
	if err != nil {
		t.Fatal(err)
	}
	body := good[len(OwnerTokenPrefix):]
	tests := []struct {
		name, tok, msg string
	}{
		{"empty", "", "does not start with"},
		{"no prefix", body, "does not start with"},
		{"other prefix", "vouch_admin_" + body, "does not start with"},
		{"short", good[:len(good)-1], "want 55"},
		{"long", good + "A", "want 55"},
		{"trailing newline", good + "\n", "want 55"},
		{"standard base64", OwnerTokenPrefix + strings.Repeat("+", 43), "not unpadded base64url"},
		{"padding", OwnerTokenPrefix + body[:42] + "=", "not unpadded base64url"},
		// 43 characters carry 258 bits: the last 2 must be zero.
		{"non-canonical last character", OwnerTokenPrefix + strings.Repeat("A", 42) + "B", "not unpadded base64url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOwnerToken(tt.tok)
			if !errors.Is(err, ErrBadOwnerToken) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want ErrBadOwnerToken containing %q", err, tt.msg)
			}
			if len(tt.tok) > len(OwnerTokenPrefix)+4 && strings.Contains(err.Error(), tt.tok[len(OwnerTokenPrefix):]) {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}

func TestCheckOwner(t *testing.T) {
	a, _ := GenerateOwnerToken()
	b, _ := GenerateOwnerToken()
	tests := []struct {
		name                string
		presented, expected string
		want                bool
	}{
		{"same", a, a, true},
		{"different", b, a, false},
		{"empty presented", "", a, false},
		{"both empty", "", "", false},
		{"empty expected", a, "", false},
		{"weak expected", "admin", "admin", false},
		{"prefix of expected", a[:len(a)-1], a, false},
		{"expected plus suffix", a + "x", a, false},
		{"case changed", strings.ToUpper(a), a, false},
	}
	for _, tt := range tests {
		if got := CheckOwner(tt.presented, tt.expected); got != tt.want {
			t.Errorf("%s: CheckOwner = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func skipOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
}

func TestLoadOrCreateOwnerToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "owner-token")
	tok, created, err := LoadOrCreateOwnerToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new file")
	}
	if err := ValidateOwnerToken(tok); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != tok+"\n" {
		t.Error("file does not hold the returned token and a newline")
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("mode = %04o, want 0600", perm)
		}
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}

	again, created, err := LoadOrCreateOwnerToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if created || again != tok {
		t.Errorf("reload: created = %v, same token = %v; want false, true", created, again == tok)
	}
	loaded, err := LoadOwnerTokenFile(path)
	if err != nil || loaded != tok {
		t.Errorf("LoadOwnerTokenFile: same token = %v, err = %v", loaded == tok, err)
	}
}

func TestLoadOwnerTokenTrimsWhitespace(t *testing.T) {
	tok, _ := GenerateOwnerToken()
	path := filepath.Join(t.TempDir(), "owner-token")
	if err := os.WriteFile(path, []byte("\n  "+tok+" \r\n\t"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, created, err := LoadOrCreateOwnerToken(path)
	if err != nil || created || got != tok {
		t.Errorf("same token = %v, created = %v, err = %v", got == tok, created, err)
	}
}

func TestLoadOwnerTokenFileBadInput(t *testing.T) {
	good, _ := GenerateOwnerToken()
	tests := []struct {
		name    string
		content string
		mode    fs.FileMode
		unixy   bool // needs Unix permission bits
		want    error
		msg     string
	}{
		{"world readable", good, 0o644, true, ErrInsecureFile, "has mode 0644"},
		{"group readable", good, 0o640, true, ErrInsecureFile, "has mode 0640"},
		{"world writable", good, 0o602, true, ErrInsecureFile, "has mode 0602"},
		{"group executable", good, 0o610, true, ErrInsecureFile, "has mode 0610"},
		{"empty", "", 0o600, false, ErrBadOwnerToken, "does not start with"},
		{"whitespace only", " \n", 0o600, false, ErrBadOwnerToken, "does not start with"},
		{"not an owner token", "hunter2hunter2hunter2", 0o600, false, ErrBadOwnerToken, "does not start with"},
		{"truncated", good[:30], 0o600, false, ErrBadOwnerToken, "characters long"},
		{"two tokens", good + "\n" + good, 0o600, false, ErrBadOwnerToken, "characters long"},
		{"too large", strings.Repeat(" ", maxOwnerFileLen+1), 0o600, false, ErrBadOwnerToken, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unixy {
				skipOnWindows(t)
			}
			path := filepath.Join(t.TempDir(), "owner-token")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			for _, load := range []func(string) error{
				func(p string) error { _, err := LoadOwnerTokenFile(p); return err },
				func(p string) error { _, _, err := LoadOrCreateOwnerToken(p); return err },
			} {
				err := load(path)
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.msg) || !strings.Contains(msg, path) {
					t.Errorf("message %q does not contain %q and the path", msg, tt.msg)
				}
				if tt.want == ErrInsecureFile && !strings.Contains(msg, "chmod 600 "+path) {
					t.Errorf("message %q does not give the fix", msg)
				}
				if c := strings.TrimSpace(tt.content); len(c) > 20 && strings.Contains(msg, c[12:]) {
					t.Errorf("message %q repeats the file's content", msg)
				}
			}
			// The bad file is left alone.
			if data, _ := os.ReadFile(path); string(data) != tt.content {
				t.Error("file was modified")
			}
		})
	}
}

func TestLoadOwnerTokenFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadOwnerTokenFile(dir)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
	_, _, err = LoadOrCreateOwnerToken(dir)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
}

func TestLoadOwnerTokenFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope")
	if _, err := LoadOwnerTokenFile(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("LoadOwnerTokenFile created the file")
	}
	// LoadOrCreate does not create missing directories.
	deep := filepath.Join(t.TempDir(), "no-such-dir", "owner-token")
	if _, _, err := LoadOrCreateOwnerToken(deep); err == nil || !strings.Contains(err.Error(), deep) {
		t.Errorf("missing directory: err = %v, want one naming %s", err, deep)
	}
}

func TestLoadOrCreateOwnerTokenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owner-token")
	const n = 16
	toks := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			toks[i], created[i], err = LoadOrCreateOwnerToken(path)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if toks[i] != toks[0] {
			t.Fatal("concurrent callers got different tokens")
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers report creating the file, want 1", creators)
	}
	if got, err := LoadOwnerTokenFile(path); err != nil || got != toks[0] {
		t.Errorf("file holds another token (err %v)", err)
	}
}
