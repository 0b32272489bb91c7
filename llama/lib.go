package llama

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
)

// LibraryOptions says where the llama.cpp libraries are.
type LibraryOptions struct {
	// Dir is the folder holding libllama, libggml, libggml-base and the ggml
	// backends (libggml-cpu-*.so, libggml-cuda.so). Required. Relative paths
	// are made absolute: the libraries are opened by absolute path, and their
	// RUNPATH=$ORIGIN finds their siblings without LD_LIBRARY_PATH.
	Dir string
	// File names inside Dir. Empty: found by pattern — libllama.*.so
	// (libllama.v0.4.0.so, libllama.cuda.v0.4.0.so), libggml.*.so and
	// libggml-base.so. Set them when a folder holds more than one build.
	LlamaFile, GGMLFile, GGMLBaseFile string
	// Logger receives llama.cpp's log lines. nil discards them. llama.cpp's
	// INFO lines (model metadata dumps) are logged at Debug level; WARN and
	// ERROR keep theirs.
	Logger *slog.Logger
}

// DeviceType is ggml's device kind.
type DeviceType int32

// Device kinds (enum ggml_backend_dev_type).
const (
	DeviceCPU   DeviceType = 0
	DeviceGPU   DeviceType = 1
	DeviceIGPU  DeviceType = 2
	DeviceAccel DeviceType = 3
	DeviceMeta  DeviceType = 4
)

func (t DeviceType) String() string {
	switch t {
	case DeviceCPU:
		return "CPU"
	case DeviceGPU:
		return "GPU"
	case DeviceIGPU:
		return "IGPU"
	case DeviceAccel:
		return "ACCEL"
	case DeviceMeta:
		return "META"
	}
	return fmt.Sprintf("DeviceType(%d)", int32(t))
}

// Device is a ggml backend device.
type Device struct {
	Name        string // "CPU", "CUDA0", ...
	Description string
	Type        DeviceType
	Backend     string // the backend registry's name ("CPU", "CUDA")
	// Memory as the backend reports it when asked; 0 when it does not say.
	// For the CPU it is host memory.
	MemoryFree, MemoryTotal uint64

	handle uintptr
}

// IsGPU reports whether the device counts as a GPU for "GPU or fail":
// discrete and integrated GPUs.
func (d Device) IsGPU() bool { return d.Type == DeviceGPU || d.Type == DeviceIGPU }

func (d Device) String() string {
	s := fmt.Sprintf("%s (%s, %s", d.Name, d.Type, d.Description)
	if d.MemoryTotal > 0 {
		s += fmt.Sprintf(", %s free of %s", fmtBytes(d.MemoryFree), fmtBytes(d.MemoryTotal))
	}
	return s + ")"
}

// Library is the process's loaded llama.cpp. There is at most one: backends
// cannot be unloaded safely, and symbols of two builds must not mix.
type Library struct {
	dir      string
	files    [3]string // base, ggml, llama (absolute)
	versions ABIVersions
	// gpuProbe explains why no GPU backend is active, computed once at load.
	gpuProbe string
	// hasGPUBackend: the folder holds a GPU backend file (a CUDA build).
	hasGPUBackend bool
}

var (
	loadMu     sync.Mutex
	loaded     *Library
	pinnedDir  string // set once any library file was opened, even if Load failed later
	logger     atomic.Pointer[slog.Logger]
	callbacks  sync.Once
	logCB      uintptr
	progressCB uintptr
)

// Load opens the llama.cpp libraries in opts.Dir, checks their versions
// against the pinned ones, routes their log to opts.Logger and loads the
// ggml backends found in the folder. It runs once per process: a second call
// with the same folder returns the same *Library (and, when opts.Logger is
// set, switches the log to it); a call with another folder fails with
// [ErrAlreadyLoaded].
func Load(opts LibraryOptions) (*Library, error) {
	if opts.Dir == "" {
		return nil, newErr(CodeLibraryNotFound, "no llama library folder given; run `make llama-libs` and pass its folder (default .cache/llama/cpu)", nil)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, newErr(CodeLibraryNotFound, "llama library folder "+opts.Dir, err)
	}
	dir = filepath.Clean(dir)

	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, newErr(CodeLibraryNotFound, fmt.Sprintf("llama library folder %s is unusable; run `make llama-libs` (CPU) or `make llama-libs-cuda` to fetch it", dir), err)
	}
	files, err := findFiles(dir, opts)
	if err != nil {
		return nil, err
	}
	loadMu.Lock()
	defer loadMu.Unlock()
	if loaded != nil {
		if loaded.dir != dir {
			return nil, newErr(CodeAlreadyLoaded, fmt.Sprintf("llama.cpp is already loaded from %s in this process; cannot load %s too", loaded.dir, dir), nil)
		}
		if opts.Logger != nil {
			logger.Store(opts.Logger)
		}
		return loaded, nil
	}
	if pinnedDir != "" && pinnedDir != dir {
		return nil, newErr(CodeAlreadyLoaded, fmt.Sprintf("libraries from %s were already opened in this process (and failed); cannot load %s too", pinnedDir, dir), nil)
	}
	if err := checkLayouts(); err != nil {
		return nil, err
	}
	if opts.Logger != nil {
		logger.Store(opts.Logger)
	}

	var handles [3]uintptr
	for i, f := range files {
		h, err := purego.Dlopen(f, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			return nil, newErr(CodeLibraryLoad, "cannot open "+f, err)
		}
		handles[i] = h
		pinnedDir = dir
	}

	// Versions first, with only the version functions bound: a library of
	// another build may lack other symbols, and "wrong version" is the
	// message that helps.
	if err := bindAll(handles[0], files[0], []binding{{&c.ggmlVersion, "ggml_version"}, {&c.ggmlCommit, "ggml_commit"}}); err != nil {
		return nil, newErr(CodeABIMismatch, "cannot read the ggml version", err)
	}
	if err := bindAll(handles[2], files[2], []binding{{&c.llamaVersion, "llama_version"}}); err != nil {
		return nil, newErr(CodeABIMismatch, "cannot read the llama version", err)
	}
	found := ABIVersions{Llama: c.llamaVersion(), GGML: c.ggmlVersion(), GGMLCommit: c.ggmlCommit()}
	if err := CheckABI(found); err != nil {
		e := err.(*Error)
		e.Msg = dir + ": " + e.Msg
		return nil, e
	}
	if err := bindAll(handles[0], files[0], ggmlBaseBindings()); err != nil {
		return nil, err
	}
	if err := bindAll(handles[1], files[1], ggmlBindings()); err != nil {
		return nil, err
	}
	if err := bindAll(handles[2], files[2], llamaBindings()); err != nil {
		return nil, err
	}

	makeCallbacks()
	// llama_log_set also sets ggml's logger, so backend loading below is
	// routed too.
	c.llamaLogSet(logCB, 0)
	c.llamaBackendInit()
	c.ggmlBackendLoadAllDir(dir)

	lib := &Library{dir: dir, files: files, versions: found}
	lib.gpuProbe = lib.probeGPU()
	loaded = lib
	return lib, nil
}

// findFiles resolves the three library files (base, ggml, llama).
func findFiles(dir string, opts LibraryOptions) ([3]string, error) {
	var out [3]string
	pick := func(name, pattern, exclude string) (string, error) {
		if name != "" {
			p := name
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, name)
			}
			if _, err := os.Stat(p); err != nil {
				return "", newErr(CodeLibraryNotFound, "llama library file "+p, err)
			}
			return p, nil
		}
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		m = slices.DeleteFunc(m, func(s string) bool {
			return exclude != "" && strings.Contains(filepath.Base(s), exclude)
		})
		switch len(m) {
		case 0:
			return "", newErr(CodeLibraryNotFound, fmt.Sprintf("no %s in %s; run `make llama-libs` (or `make llama-libs-cuda`)", pattern, dir), fs.ErrNotExist)
		case 1:
			return m[0], nil
		}
		return "", newErr(CodeLibraryNotFound, fmt.Sprintf("several %s in %s (%s); name one in the options", pattern, dir, strings.Join(m, ", ")), nil)
	}
	var err error
	if out[0], err = pick(opts.GGMLBaseFile, "libggml-base.so", ""); err != nil {
		return out, err
	}
	if out[1], err = pick(opts.GGMLFile, "libggml.*so", ""); err != nil {
		return out, err
	}
	if out[2], err = pick(opts.LlamaFile, "libllama.*so", "common"); err != nil {
		return out, err
	}
	return out, nil
}

// Dir is the library folder.
func (l *Library) Dir() string { return l.dir }

// Versions reports the loaded library's versions (equal to [PinnedABI]).
func (l *Library) Versions() ABIVersions { return l.versions }

// SetLogger routes llama.cpp's log to lg (nil discards). The log is
// process-wide, like the library.
func (l *Library) SetLogger(lg *slog.Logger) { logger.Store(lg) }

// Devices lists the ggml devices of the loaded backends, with memory
// figures read now.
func (l *Library) Devices() []Device {
	n := c.ggmlBackendDevCount()
	out := make([]Device, 0, n)
	for i := range n {
		d := c.ggmlBackendDevGet(i)
		if d == 0 {
			continue
		}
		dev := Device{
			Name:        c.ggmlBackendDevName(d),
			Description: c.ggmlBackendDevDesc(d),
			Type:        DeviceType(c.ggmlBackendDevType(d)),
			handle:      d,
		}
		if reg := c.ggmlBackendDevReg(d); reg != 0 {
			dev.Backend = c.ggmlBackendRegName(reg)
		}
		c.ggmlBackendDevMemory(d, &dev.MemoryFree, &dev.MemoryTotal)
		out = append(out, dev)
	}
	return out
}

// GPUs lists the GPU devices ([Device.IsGPU]).
func (l *Library) GPUs() []Device {
	return slices.DeleteFunc(l.Devices(), func(d Device) bool { return !d.IsGPU() })
}

// RequireGPU is the "GPU or fail" rule: nil when a GPU device is present or
// allowCPU is set; otherwise an [ErrGPUUnavailable] error that lists the
// devices found, says why no GPU backend is active (for example the CUDA
// backend failing to load for want of libcudart.so.13), and how to fix it.
func (l *Library) RequireGPU(allowCPU bool) error {
	if allowCPU || len(l.GPUs()) > 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("no GPU device for inference; devices found: ")
	var names []string
	for _, d := range l.Devices() {
		names = append(names, d.String())
	}
	if len(names) == 0 {
		names = append(names, "none")
	}
	b.WriteString(strings.Join(names, "; "))
	b.WriteString(". ")
	b.WriteString(l.gpuProbe)
	b.WriteString(" To fix: ")
	if !l.hasGPUBackend {
		b.WriteString("run `make llama-libs-cuda` and start with --llama-lib-dir .cache/llama/cuda; ")
	}
	b.WriteString("install the CUDA 13 runtime (libcudart.so.13, libcublas.so.13) and an NVIDIA driver (libcuda.so.1);" +
		" or start continuumd with its --allow-cpu flag to run on the CPU, for development (make run ARGS=--allow-cpu; bin/continuumd --allow-cpu).")
	return newErr(CodeGPUUnavailable, b.String(), nil)
}

// gpuBackendFiles are the ggml backends that provide GPU devices.
var gpuBackendFiles = []string{"libggml-cuda*.so", "libggml-vulkan*.so", "libggml-hip*.so", "libggml-sycl*.so", "libggml-metal*.so"}

// probeGPU explains the absence of a GPU device. ggml_backend_load_all skips
// a backend that fails to load without saying why; loading it again by path
// with ggml_backend_load makes ggml log the dlopen error, which is captured.
func (l *Library) probeGPU() string {
	if len(l.GPUs()) > 0 {
		return ""
	}
	registered := map[string]uint64{}
	for i := range c.ggmlBackendRegCount() {
		if reg := c.ggmlBackendRegGet(i); reg != 0 {
			registered[strings.ToLower(c.ggmlBackendRegName(reg))] = c.ggmlBackendRegDevCnt(reg)
		}
	}
	var reasons []string
	for _, pat := range gpuBackendFiles {
		m, _ := filepath.Glob(filepath.Join(l.dir, pat))
		for _, path := range m {
			l.hasGPUBackend = true
			name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "libggml-"), ".so")
			if n, ok := registered[name]; ok {
				reasons = append(reasons, fmt.Sprintf("the %s backend (%s) loaded but reports %d devices (no GPU visible, or the driver is missing or too old)", name, filepath.Base(path), n))
				continue
			}
			var reg uintptr
			lines := captureLog(func() { reg = c.ggmlBackendLoad(path) })
			switch {
			case reg == 0 && len(lines) > 0:
				reasons = append(reasons, fmt.Sprintf("the %s backend (%s) failed to load: %s", name, filepath.Base(path), strings.Join(lines, "; ")))
			case reg == 0:
				reasons = append(reasons, fmt.Sprintf("the %s backend (%s) failed to load", name, filepath.Base(path)))
			case c.ggmlBackendRegDevCnt(reg) == 0:
				reasons = append(reasons, fmt.Sprintf("the %s backend (%s) loaded but reports no devices (no GPU visible, or the driver is missing or too old)", name, filepath.Base(path)))
			default:
				reasons = append(reasons, fmt.Sprintf("the %s backend (%s) loaded only on a second attempt", name, filepath.Base(path)))
			}
		}
	}
	if len(reasons) == 0 {
		return fmt.Sprintf("%s holds no GPU backend (no libggml-cuda.so): it is a CPU-only build.", l.dir)
	}
	return strings.Join(reasons, "; ") + "."
}

// Logging. llama.cpp calls the log callback with fragments: a line may come
// in pieces (level CONT continues the previous one), so text is buffered
// until a newline. Captures collect lines for error messages (a failed
// backend or model load explains itself only in the log).

const (
	glogNone  = 0
	glogDebug = 1
	glogInfo  = 2
	glogWarn  = 3
	glogError = 4
	glogCont  = 5
)

var logState struct {
	mu       sync.Mutex
	partial  strings.Builder
	level    int32
	captures []*[]string
}

func makeCallbacks() {
	callbacks.Do(func() {
		// Created once per process: purego callbacks are never freed and
		// their number is limited.
		logCB = purego.NewCallback(onLog)
		progressCB = purego.NewCallback(onProgress)
	})
}

func onLog(level int32, text *byte, _ uintptr) {
	s := goString(text)
	logState.mu.Lock()
	if level != glogCont {
		logState.level = level
	}
	logState.partial.WriteString(s)
	var lines []string
	lvl := logState.level
	if buf := logState.partial.String(); strings.Contains(buf, "\n") {
		i := strings.LastIndexByte(buf, '\n')
		lines = strings.Split(buf[:i], "\n")
		logState.partial.Reset()
		logState.partial.WriteString(buf[i+1:])
	}
	for _, line := range lines {
		if lvl >= glogWarn && line != "" {
			for _, cp := range logState.captures {
				*cp = append(*cp, strings.TrimSpace(line))
			}
		}
	}
	logState.mu.Unlock()

	lg := logger.Load()
	if lg == nil {
		return
	}
	sl := slog.LevelDebug
	switch lvl {
	case glogWarn:
		sl = slog.LevelWarn
	case glogError:
		sl = slog.LevelError
	}
	for _, line := range lines {
		if line != "" {
			lg.Log(context.Background(), sl, line, "source", "llama.cpp")
		}
	}
}

// captureLog runs f and returns the WARN and ERROR lines llama.cpp logged
// meanwhile (from any thread: lines of concurrent calls may mix in).
func captureLog(f func()) []string {
	var lines []string
	logState.mu.Lock()
	logState.captures = append(logState.captures, &lines)
	logState.mu.Unlock()
	f()
	logState.mu.Lock()
	logState.captures = slices.DeleteFunc(logState.captures, func(p *[]string) bool { return p == &lines })
	out := slices.Clone(lines)
	logState.mu.Unlock()
	return out
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
