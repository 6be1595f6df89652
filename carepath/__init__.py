"""Process composition: the `carepath` command, over web, scheduler and the worker."""
