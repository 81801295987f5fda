// Command say is the program package bintest's tests build and run: it
// writes each argument after the first as a line, to stdout and stderr in
// turn, then exits with the status its first argument gives, or, given
// "hang", stays until it is killed (a server that got past its checks).
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: say STATUS|hang [LINE...]")
		os.Exit(2)
	}
	for i, l := range os.Args[2:] {
		w := os.Stdout
		if i%2 == 1 {
			w = os.Stderr
		}
		fmt.Fprintln(w, l)
	}
	if os.Args[1] == "hang" {
		for {
			time.Sleep(time.Hour)
		}
	}
	code, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(code)
}
