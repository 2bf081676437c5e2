package raftnode

import (
	"fmt"
	"log"
	"os"
)

// quietLogger keeps raft's warnings and errors and drops the rest.
type quietLogger struct{}

var stdlog = log.New(os.Stderr, "raft: ", log.LstdFlags)

func (quietLogger) Debug(...interface{})                {}
func (quietLogger) Debugf(string, ...interface{})       {}
func (quietLogger) Info(...interface{})                 {}
func (quietLogger) Infof(string, ...interface{})        {}
func (quietLogger) Warning(v ...interface{})            { stdlog.Print(v...) }
func (quietLogger) Warningf(f string, v ...interface{}) { stdlog.Printf(f, v...) }
func (quietLogger) Error(v ...interface{})              { stdlog.Print(v...) }
func (quietLogger) Errorf(f string, v ...interface{})   { stdlog.Printf(f, v...) }
func (quietLogger) Fatal(v ...interface{})              { panic(fmt.Sprint(v...)) }
func (quietLogger) Fatalf(f string, v ...interface{})   { panic(fmt.Sprintf(f, v...)) }
func (quietLogger) Panic(v ...interface{})              { panic(fmt.Sprint(v...)) }
func (quietLogger) Panicf(f string, v ...interface{})   { panic(fmt.Sprintf(f, v...)) }
