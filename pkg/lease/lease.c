typedef int rg_placeholder_;
