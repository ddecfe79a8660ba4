module lilypad.test/gotemplate

go 1.22
