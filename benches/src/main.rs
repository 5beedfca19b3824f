fn main() { println!("TODO"); }
