module example.com/phantom

go 1.19
