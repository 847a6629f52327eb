//go:build !linux

package main

import (
	"errors"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

func cpuTicks(int) (int64, error) {
	return 0, errors.New("reading a process's CPU time needs Linux /proc")
}

func clockTicks() int64 { return 100 }
